// Best-effort clearing of secrets (data keys, decrypted payloads) once
// clavisctl has printed them, so they do not linger in freed heap memory for
// the rest of the process. gRPC's own buffers may still hold copies; this only
// covers the strings clavisctl owns.
#ifndef CLAVIS_TOOLS_CLAVISCTL_WIPE_H_
#define CLAVIS_TOOLS_CLAVISCTL_WIPE_H_

#include <string>

namespace clavis::clavisctl {

inline void WipeString(std::string* secret) {
  // Writes through a volatile pointer are not dead stores the optimiser may
  // drop, unlike a memset right before the string is destroyed.
  volatile char* p = secret->data();
  for (size_t i = 0; i < secret->size(); ++i) p[i] = 0;
  secret->clear();
}

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_WIPE_H_
