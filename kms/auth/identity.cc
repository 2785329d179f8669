#include "kms/auth/identity.h"

namespace clavis::kms::auth {

const char* AuthMethodName(AuthMethod method) {
  switch (method) {
    case AuthMethod::kMutualTls:
      return "mtls";
    case AuthMethod::kToken:
      return "token";
    case AuthMethod::kInsecureDev:
      return "insecure-dev";
  }
  return "unknown";
}

}  // namespace clavis::kms::auth
