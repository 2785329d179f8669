// Pkcs11Module: one PKCS#11 module (a shared library such as
// /usr/lib/softhsm/libsofthsm2.so), loaded with dlopen and initialised once
// per process. Internal to kms/root (used by Pkcs11RootKeyProvider and its
// tests); not a general-purpose PKCS#11 wrapper.
//
// A module's state is process-wide: C_Initialize may be called only once
// until C_Finalize, and C_Finalize ends every session the process has with
// the module. So every user of the same module file shares one instance,
// handed out by Load(), and the last reference to go finalises the module.
//
// The module is loaded RTLD_NODELETE: some modules leave thread-local
// destructors or atexit handlers behind, which must not point into an
// unmapped library at process exit.
//
// Thread safety: Load() and the destruction of references may happen on any
// thread. The function list is used concurrently by design (the module is
// initialised with CKF_OS_LOCKING_OK, so it locks for itself).
#ifndef CLAVIS_KMS_ROOT_PKCS11_MODULE_H_
#define CLAVIS_KMS_ROOT_PKCS11_MODULE_H_

#include <p11-kit/pkcs11.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::kms::root_internal {

class Pkcs11Module {
 public:
  // Loads and initialises the module at `path`, or returns the instance
  // this process already holds for the same file. Errors, each naming the
  // path: NotFound (no such file), FailedPrecondition (not loadable, not a
  // PKCS#11 module, or C_Initialize refused).
  static absl::StatusOr<std::shared_ptr<Pkcs11Module>> Load(const std::string& path);

  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;

  // The module's function table; valid while this instance lives.
  CK_FUNCTION_LIST_PTR functions() const { return functions_; }
  // The path the module was first loaded from (as given, for messages).
  const std::string& path() const { return path_; }

 private:
  // Only Load() makes instances, and only its deleter destroys them.
  Pkcs11Module(std::string path, void* library, CK_FUNCTION_LIST_PTR functions,
               bool finalize_on_close)
      : path_(std::move(path)),
        library_(library),
        functions_(functions),
        finalize_on_close_(finalize_on_close) {}
  // C_Finalize (if this process's Load initialised the module) and dlclose.
  ~Pkcs11Module();

  const std::string path_;
  void* const library_;
  const CK_FUNCTION_LIST_PTR functions_;
  // False when C_Initialize answered CKR_CRYPTOKI_ALREADY_INITIALIZED:
  // someone else in the process initialised the module and finalises it.
  const bool finalize_on_close_;
};

// The name of a PKCS#11 return value, e.g. "CKR_PIN_INCORRECT", or
// "CKR_0x000001a0" for one this table does not know. For messages and logs.
std::string Pkcs11ErrorName(CK_RV rv);

// A fixed-size, blank-padded PKCS#11 text field (token label, manufacturer)
// without its padding.
std::string Pkcs11Text(const unsigned char* field, size_t size);

// A token or key label as it appears in messages: in single quotes,
// printable ASCII as is, anything else escaped, so a strange label cannot
// garble a log line.
std::string QuotedLabel(absl::string_view label);

}  // namespace clavis::kms::root_internal

#endif  // CLAVIS_KMS_ROOT_PKCS11_MODULE_H_
