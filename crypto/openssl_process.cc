#include "crypto/openssl_process.h"

#include <openssl/crypto.h>

namespace clavis::crypto {

absl::Status InitOpenSslForProcess() {
  if (OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr) != 1) {
    return absl::InternalError("OpenSSL could not be initialised");
  }
  return absl::OkStatus();
}

}  // namespace clavis::crypto
