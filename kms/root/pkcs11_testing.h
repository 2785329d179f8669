// Test helpers for the PKCS#11 root key: a real SoftHSM2 token made in a
// test's temporary directory with deploy/softhsm/setup-token.sh.
// Test-only. The including target defines CLAVIS_SOFTHSM2_MODULE (the
// module's path) and CLAVIS_SOFTHSM_SETUP_SCRIPT (the script's path); see
// kms/root/CMakeLists.txt.
//
// SoftHSM2 missing is a test FAILURE, never a skip: scripts/setup installs
// it, and a skipped HSM test would look like a passing one.
#ifndef CLAVIS_KMS_ROOT_PKCS11_TESTING_H_
#define CLAVIS_KMS_ROOT_PKCS11_TESTING_H_

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace clavis::kms::pkcs11_testing {

inline constexpr char kSoftHsmModule[] = CLAVIS_SOFTHSM2_MODULE;
inline constexpr char kSetupTokenScript[] = CLAVIS_SOFTHSM_SETUP_SCRIPT;

inline ::testing::AssertionResult SoftHsmInstalled() {
  if (::access(kSoftHsmModule, R_OK) != 0) {
    return ::testing::AssertionFailure()
           << "SoftHSM2's PKCS#11 module " << kSoftHsmModule
           << " is missing: run scripts/setup (it installs the Debian package softhsm2), or "
              "configure with -DCLAVIS_SOFTHSM2_MODULE=<path>";
  }
  return ::testing::AssertionSuccess();
}

// Makes a token labelled `label` with user PIN `pin` in the SoftHSM2 store
// under `dir` (creating the store on first use) and points SOFTHSM2_CONF
// at it, for this process and the children it starts. SoftHSM2 reads the
// variable in C_Initialize: every provider of an earlier store must be
// gone (so the module was finalised) before a test uses a new one.
inline ::testing::AssertionResult MakeSoftHsmToken(const std::string& dir, const std::string& label,
                                                   const std::string& pin,
                                                   const std::string& so_pin = "so-pin-8642") {
  if (auto installed = SoftHsmInstalled(); !installed) return installed;
  ::setenv("CLAVIS_PKCS11_PIN", pin.c_str(), 1);
  ::setenv("CLAVIS_PKCS11_SO_PIN", so_pin.c_str(), 1);
  const std::string command = absl::StrCat("'", kSetupTokenScript, "' --module '", kSoftHsmModule,
                                           "' --label '", label, "' '", dir, "' 2>&1");
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  int status = -1;
  if (pipe != nullptr) {
    char buffer[512];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
    status = ::pclose(pipe);
  }
  ::unsetenv("CLAVIS_PKCS11_PIN");
  ::unsetenv("CLAVIS_PKCS11_SO_PIN");
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return ::testing::AssertionFailure() << command << " failed:\n" << output;
  }
  ::setenv("SOFTHSM2_CONF", absl::StrCat(dir, "/softhsm2.conf").c_str(), 1);
  return ::testing::AssertionSuccess();
}

}  // namespace clavis::kms::pkcs11_testing

#endif  // CLAVIS_KMS_ROOT_PKCS11_TESTING_H_
