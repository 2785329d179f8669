#include "kms/root/pkcs11_module.h"

#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"

namespace clavis::kms::root_internal {
namespace {

// The modules this process holds, by canonical file path, with the number
// of live references to each. Reference counts are kept by hand under the
// mutex (rather than weak_ptrs) so that a module is finalised before anyone
// can load it again: with weak_ptrs a Load() could run between the last
// reference going and its C_Finalize, and be finalised under its feet.
struct Registry {
  struct Entry {
    Pkcs11Module* module = nullptr;
    int references = 0;
  };
  absl::Mutex mu;
  std::map<std::string, Entry> modules ABSL_GUARDED_BY(mu);
};

Registry& GetRegistry() {
  // Never destroyed: references may still be dropped during static
  // destruction at exit.
  static Registry* registry = new Registry;
  return *registry;
}

std::string DlError() {
  const char* error = ::dlerror();
  return error != nullptr ? error : "unknown error";
}

}  // namespace

absl::StatusOr<std::shared_ptr<Pkcs11Module>> Pkcs11Module::Load(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("no PKCS#11 module path given");
  }
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(path, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) {
      return absl::NotFoundError(absl::StrCat("PKCS#11 module ", path, " does not exist"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load PKCS#11 module ", path, ": ", ec.message()));
  }
  const std::string key = canonical.string();

  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  auto it = registry.modules.find(key);
  if (it == registry.modules.end()) {
    // RTLD_LOCAL: the module's symbols must not satisfy anyone else's.
    void* library = ::dlopen(key.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (library == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot load PKCS#11 module ", path, ": ", DlError()));
    }
    auto get_function_list =
        reinterpret_cast<CK_C_GetFunctionList>(::dlsym(library, "C_GetFunctionList"));
    if (get_function_list == nullptr) {
      ::dlclose(library);
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is not a PKCS#11 module: it has no C_GetFunctionList function"));
    }
    CK_FUNCTION_LIST_PTR functions = nullptr;
    CK_RV rv = get_function_list(&functions);
    if (rv != CKR_OK || functions == nullptr) {
      ::dlclose(library);
      return absl::FailedPreconditionError(absl::StrCat(
          "PKCS#11 module ", path, ": C_GetFunctionList failed (", Pkcs11ErrorName(rv), ")"));
    }
    if (functions->version.major != 2) {
      spdlog::warn("PKCS#11 module {} reports interface version {}.{}; Clavis uses 2.x calls", path,
                   functions->version.major, functions->version.minor);
    }
    // The module may be called from many threads at once and may use the
    // operating system's locks for that.
    CK_C_INITIALIZE_ARGS args = {};
    args.flags = CKF_OS_LOCKING_OK;
    rv = functions->C_Initialize(&args);
    bool finalize_on_close = true;
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      // Initialised by other code in this process (not through Load): use
      // it, and leave finalising it to whoever initialised it.
      finalize_on_close = false;
    } else if (rv != CKR_OK) {
      ::dlclose(library);
      std::string hint;
      if (rv == CKR_CANT_LOCK) {
        hint = ": the module cannot use operating-system locking (CKF_OS_LOCKING_OK)";
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "PKCS#11 module ", path, ": C_Initialize failed (", Pkcs11ErrorName(rv), ")", hint));
    }
    it = registry.modules
             .emplace(
                 key,
                 Registry::Entry{new Pkcs11Module(path, library, functions, finalize_on_close), 0})
             .first;
  }
  ++it->second.references;
  // The deleter hands the reference back; the last one finalises the module
  // while holding the registry lock, so no Load() can see it half gone.
  return std::shared_ptr<Pkcs11Module>(it->second.module, [key](Pkcs11Module* module) {
    Registry& registry = GetRegistry();
    absl::MutexLock lock(&registry.mu);
    auto entry = registry.modules.find(key);
    if (entry == registry.modules.end() || entry->second.module != module) return;  // not ours
    if (--entry->second.references == 0) {
      registry.modules.erase(entry);
      delete module;
    }
  });
}

Pkcs11Module::~Pkcs11Module() {
  if (finalize_on_close_) {
    const CK_RV rv = functions_->C_Finalize(nullptr);
    if (rv != CKR_OK) {
      spdlog::warn("PKCS#11 module {}: C_Finalize failed ({})", path_, Pkcs11ErrorName(rv));
    }
  }
  ::dlclose(library_);
}

std::string Pkcs11ErrorName(CK_RV rv) {
  switch (rv) {
#define CLAVIS_CKR_CASE(name) \
  case name:                  \
    return #name;
    CLAVIS_CKR_CASE(CKR_OK)
    CLAVIS_CKR_CASE(CKR_CANCEL)
    CLAVIS_CKR_CASE(CKR_HOST_MEMORY)
    CLAVIS_CKR_CASE(CKR_SLOT_ID_INVALID)
    CLAVIS_CKR_CASE(CKR_GENERAL_ERROR)
    CLAVIS_CKR_CASE(CKR_FUNCTION_FAILED)
    CLAVIS_CKR_CASE(CKR_ARGUMENTS_BAD)
    CLAVIS_CKR_CASE(CKR_CANT_LOCK)
    CLAVIS_CKR_CASE(CKR_ATTRIBUTE_READ_ONLY)
    CLAVIS_CKR_CASE(CKR_ATTRIBUTE_SENSITIVE)
    CLAVIS_CKR_CASE(CKR_ATTRIBUTE_TYPE_INVALID)
    CLAVIS_CKR_CASE(CKR_ATTRIBUTE_VALUE_INVALID)
    CLAVIS_CKR_CASE(CKR_ACTION_PROHIBITED)
    CLAVIS_CKR_CASE(CKR_DATA_INVALID)
    CLAVIS_CKR_CASE(CKR_DATA_LEN_RANGE)
    CLAVIS_CKR_CASE(CKR_DEVICE_ERROR)
    CLAVIS_CKR_CASE(CKR_DEVICE_MEMORY)
    CLAVIS_CKR_CASE(CKR_DEVICE_REMOVED)
    CLAVIS_CKR_CASE(CKR_ENCRYPTED_DATA_INVALID)
    CLAVIS_CKR_CASE(CKR_ENCRYPTED_DATA_LEN_RANGE)
    CLAVIS_CKR_CASE(CKR_FUNCTION_CANCELED)
    CLAVIS_CKR_CASE(CKR_FUNCTION_NOT_SUPPORTED)
    CLAVIS_CKR_CASE(CKR_KEY_HANDLE_INVALID)
    CLAVIS_CKR_CASE(CKR_KEY_SIZE_RANGE)
    CLAVIS_CKR_CASE(CKR_KEY_TYPE_INCONSISTENT)
    CLAVIS_CKR_CASE(CKR_KEY_FUNCTION_NOT_PERMITTED)
    CLAVIS_CKR_CASE(CKR_MECHANISM_INVALID)
    CLAVIS_CKR_CASE(CKR_MECHANISM_PARAM_INVALID)
    CLAVIS_CKR_CASE(CKR_OBJECT_HANDLE_INVALID)
    CLAVIS_CKR_CASE(CKR_OPERATION_ACTIVE)
    CLAVIS_CKR_CASE(CKR_OPERATION_NOT_INITIALIZED)
    CLAVIS_CKR_CASE(CKR_PIN_INCORRECT)
    CLAVIS_CKR_CASE(CKR_PIN_INVALID)
    CLAVIS_CKR_CASE(CKR_PIN_LEN_RANGE)
    CLAVIS_CKR_CASE(CKR_PIN_EXPIRED)
    CLAVIS_CKR_CASE(CKR_PIN_LOCKED)
    CLAVIS_CKR_CASE(CKR_SESSION_CLOSED)
    CLAVIS_CKR_CASE(CKR_SESSION_COUNT)
    CLAVIS_CKR_CASE(CKR_SESSION_HANDLE_INVALID)
    CLAVIS_CKR_CASE(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
    CLAVIS_CKR_CASE(CKR_SESSION_READ_ONLY)
    CLAVIS_CKR_CASE(CKR_TEMPLATE_INCOMPLETE)
    CLAVIS_CKR_CASE(CKR_TEMPLATE_INCONSISTENT)
    CLAVIS_CKR_CASE(CKR_TOKEN_NOT_PRESENT)
    CLAVIS_CKR_CASE(CKR_TOKEN_NOT_RECOGNIZED)
    CLAVIS_CKR_CASE(CKR_TOKEN_WRITE_PROTECTED)
    CLAVIS_CKR_CASE(CKR_USER_ALREADY_LOGGED_IN)
    CLAVIS_CKR_CASE(CKR_USER_NOT_LOGGED_IN)
    CLAVIS_CKR_CASE(CKR_USER_PIN_NOT_INITIALIZED)
    CLAVIS_CKR_CASE(CKR_USER_TYPE_INVALID)
    CLAVIS_CKR_CASE(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
    CLAVIS_CKR_CASE(CKR_RANDOM_NO_RNG)
    CLAVIS_CKR_CASE(CKR_BUFFER_TOO_SMALL)
    CLAVIS_CKR_CASE(CKR_CRYPTOKI_NOT_INITIALIZED)
    CLAVIS_CKR_CASE(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    CLAVIS_CKR_CASE(CKR_FIPS_SELF_TEST_FAILED)
    CLAVIS_CKR_CASE(CKR_LIBRARY_LOAD_FAILED)
    CLAVIS_CKR_CASE(CKR_FUNCTION_REJECTED)
#undef CLAVIS_CKR_CASE
    default:
      return absl::StrFormat("CKR_0x%08x", static_cast<unsigned long>(rv));
  }
}

std::string QuotedLabel(absl::string_view label) {
  return absl::StrCat("'", absl::CHexEscape(label), "'");
}

std::string Pkcs11Text(const unsigned char* field, size_t size) {
  size_t end = size;
  while (end > 0 && (field[end - 1] == ' ' || field[end - 1] == '\0')) --end;
  return std::string(reinterpret_cast<const char*>(field), end);
}

}  // namespace clavis::kms::root_internal
