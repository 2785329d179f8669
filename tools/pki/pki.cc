#include "tools/pki/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "kms/policy/principal.h"

namespace clavis::pki {
namespace {

template <typename T, void (*Free)(T*)>
struct SslDeleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, SslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, SslDeleter<X509, X509_free>>;
using ExtensionPtr =
    std::unique_ptr<X509_EXTENSION, SslDeleter<X509_EXTENSION, X509_EXTENSION_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES, SslDeleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, SslDeleter<GENERAL_NAME, GENERAL_NAME_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, SslDeleter<BIGNUM, BN_free>>;
using BioPtr = std::unique_ptr<BIO, SslDeleter<BIO, BIO_free_all>>;

// RFC 5280 ub-common-name.
constexpr size_t kMaxCommonNameLength = 64;
// Certificates start this long before they are issued, so that a host whose
// clock is a little behind accepts a certificate made a moment ago.
constexpr absl::Duration kBackdate = absl::Minutes(5);
constexpr absl::Duration kMaxValidity = absl::Hours(24 * 365 * 100);
// Far above any PEM key or certificate this CA makes or reads.
constexpr size_t kMaxPemBytes = 64 * 1024;
constexpr size_t kSerialBytes = 16;

// The first error on OpenSSL's queue (then cleared), for Internal errors.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  std::string message = "unknown OpenSSL error";
  if (code != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    message = buffer;
  }
  ERR_clear_error();
  return message;
}

absl::Status SslFailure(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, " failed: ", OpenSslError()));
}

// Never prompts on the terminal for an encrypted PEM (OpenSSL's default
// callback would); an encrypted key simply fails to load.
int NoPassword(char*, int, int, void*) { return -1; }

std::string ErrnoText(int err) {
  char buffer[128];
  // The GNU strerror_r returns the message (maybe not in `buffer`).
  return strerror_r(err, buffer, sizeof(buffer));
}

// A failed system call on `path`, with a code a caller can act on.
absl::Status FileError(int err, absl::string_view action, absl::string_view path) {
  const std::string message = absl::StrCat("cannot ", action, " ", path, ": ", ErrnoText(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(absl::StrCat(path, " already exists"));
    case EIO:
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
      return absl::InternalError(message);
    default:  // EACCES, ENOTDIR, EISDIR, EROFS, ELOOP, ENAMETOOLONG, ...
      return absl::InvalidArgumentError(message);
  }
}

absl::Status CheckValidity(absl::Duration validity) {
  if (validity <= absl::ZeroDuration() || validity > kMaxValidity) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate validity must be positive and at most 100 years, not ",
                     absl::FormatDuration(validity)));
  }
  return absl::OkStatus();
}

absl::Status CheckCommonName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxCommonNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("a common name must be 1-", kMaxCommonNameLength, " characters"));
  }
  for (char c : name) {
    if (absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("a common name may not contain control characters");
    }
  }
  return absl::OkStatus();
}

std::string PrincipalCommonName(absl::string_view principal) {
  if (principal.size() <= kMaxCommonNameLength) return std::string(principal);
  return absl::StrCat(principal.substr(0, kMaxCommonNameLength - 1), "~");
}

// A DNS name for a server certificate: dot-separated labels of letters,
// digits and '-' (not at either end of a label), at most 253 characters; the
// leftmost label may be the wildcard "*".
absl::Status CheckDnsName(absl::string_view name) {
  const auto bad = [name](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", absl::CHexEscape(name), "\" is not a DNS name: ", why));
  };
  if (name.empty() || name.size() > 253) return bad("it must be 1-253 characters");
  absl::string_view rest = name;
  absl::ConsumePrefix(&rest, "*.");
  for (absl::string_view label : absl::StrSplit(rest, '.')) {
    if (label.empty() || label.size() > 63) return bad("each label must be 1-63 characters");
    if (label.front() == '-' || label.back() == '-') {
      return bad("a label may not start or end with '-'");
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return bad("only letters, digits, '-' and '.' (and a leading \"*.\") are allowed");
      }
    }
  }
  return absl::OkStatus();
}

// Adds a DNS name or URI (both IA5String) to `names`.
absl::Status AddIa5Name(GENERAL_NAMES* names, int type, absl::string_view value) {
  GeneralNamePtr name(GENERAL_NAME_new());
  ASN1_IA5STRING* text = ASN1_IA5STRING_new();
  if (name == nullptr || text == nullptr ||
      ASN1_STRING_set(text, value.data(), static_cast<int>(value.size())) != 1) {
    ASN1_IA5STRING_free(text);
    return SslFailure("building a subject alternative name");
  }
  GENERAL_NAME_set0_value(name.get(), type, text);
  if (sk_GENERAL_NAME_push(names, name.get()) == 0) return SslFailure("sk_GENERAL_NAME_push");
  name.release();  // owned by `names` now
  return absl::OkStatus();
}

// Adds an IPv4 or IPv6 address. inet_pton is strict: "1.2.3", "1.2.3.4x",
// leading zeros and zone ids ("fe80::1%eth0") are all refused.
absl::Status AddIpAddress(GENERAL_NAMES* names, const std::string& address) {
  unsigned char bytes[16];
  int length = 0;
  if (inet_pton(AF_INET, address.c_str(), bytes) == 1) {
    length = 4;
  } else if (inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
    length = 16;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", absl::CHexEscape(address), "\" is not an IPv4 or IPv6 address"));
  }
  GeneralNamePtr name(GENERAL_NAME_new());
  ASN1_OCTET_STRING* octets = ASN1_OCTET_STRING_new();
  if (name == nullptr || octets == nullptr || ASN1_OCTET_STRING_set(octets, bytes, length) != 1) {
    ASN1_OCTET_STRING_free(octets);
    return SslFailure("building an IP address name");
  }
  GENERAL_NAME_set0_value(name.get(), GEN_IPADD, octets);
  if (sk_GENERAL_NAME_push(names, name.get()) == 0) return SslFailure("sk_GENERAL_NAME_push");
  name.release();
  return absl::OkStatus();
}

absl::StatusOr<PkeyPtr> GenerateKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return SslFailure("generating a P-256 key");
  return key;
}

// PKCS#8 PEM, through a memory BIO on OpenSSL's secure heap (its buffers are
// wiped when they grow and when freed) into SecretBytes.
absl::StatusOr<crypto::SecretBytes> PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr) return SslFailure("BIO_new");
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return SslFailure("PEM_write_bio_PrivateKey");
  }
  BUF_MEM* buffer = nullptr;
  if (BIO_get_mem_ptr(bio.get(), &buffer) != 1 || buffer == nullptr || buffer->length == 0) {
    return SslFailure("reading the PEM private key");
  }
  crypto::SecretBytes pem =
      crypto::SecretBytes::CopyOf(absl::string_view(buffer->data, buffer->length));
  OPENSSL_cleanse(buffer->data, buffer->length);
  return pem;
}

absl::StatusOr<std::string> CertificateToPem(X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return SslFailure("BIO_new");
  if (PEM_write_bio_X509(bio.get(), certificate) != 1) return SslFailure("PEM_write_bio_X509");
  BUF_MEM* buffer = nullptr;
  if (BIO_get_mem_ptr(bio.get(), &buffer) != 1 || buffer == nullptr) {
    return SslFailure("reading the PEM certificate");
  }
  return std::string(buffer->data, buffer->length);
}

absl::StatusOr<X509Ptr> ParseCertificate(absl::string_view pem, absl::string_view what) {
  if (pem.empty() || pem.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a PEM certificate"));
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return SslFailure("BIO_new_mem_buf");
  X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
  if (certificate == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a PEM certificate: ", OpenSslError()));
  }
  return certificate;
}

absl::StatusOr<PkeyPtr> ParsePrivateKey(const crypto::SecretBytes& pem, absl::string_view what) {
  if (pem.empty() || pem.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a PEM private key"));
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return SslFailure("BIO_new_mem_buf");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
  if (key == nullptr) {
    // The error names OpenSSL's decoder step, never the key's bytes.
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not an unencrypted PEM private key: ", OpenSslError()));
  }
  return key;
}

std::string Rfc3339Utc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ToTime(const ASN1_TIME* time) {
  struct tm tm;
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    return absl::InvalidArgumentError("the certificate has a malformed validity time");
  }
  return absl::FromTM(tm, absl::UTCTimeZone());
}

absl::Status SetTime(ASN1_TIME* field, absl::Time time) {
  if (ASN1_TIME_set(field, absl::ToTimeT(time)) == nullptr) return SslFailure("ASN1_TIME_set");
  return absl::OkStatus();
}

// 128 random bits as a positive serial number (never zero).
absl::Status SetRandomSerial(X509* certificate) {
  std::string bytes;
  do {
    bytes = crypto::RandomBytes(kSerialBytes);
  } while (std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; }));
  BignumPtr number(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                             static_cast<int>(bytes.size()), nullptr));
  if (number == nullptr ||
      BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(certificate)) == nullptr) {
    return SslFailure("setting the serial number");
  }
  return absl::OkStatus();
}

// One extension from OpenSSL's configuration syntax. Only fixed strings of
// this file go through here; names from the caller are built as
// GENERAL_NAMEs, so a comma in a DNS name cannot smuggle in another entry.
absl::Status AddExtension(X509* certificate, X509V3_CTX* context, int nid, const char* value) {
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, context, nid, value));
  if (extension == nullptr || X509_add_ext(certificate, extension.get(), -1) != 1) {
    return SslFailure(absl::StrCat("adding extension ", OBJ_nid2sn(nid)));
  }
  return absl::OkStatus();
}

// What differs between the CA, server and client certificates.
struct Profile {
  std::string common_name;
  absl::Duration validity;
  const char* basic_constraints;
  const char* key_usage;
  const char* extended_key_usage;  // null: none
  GENERAL_NAMES* alt_names;        // null: none; not owned
};

// The issuer: null `issuer_certificate` makes a self-signed certificate.
struct Issuer {
  X509* certificate = nullptr;
  EVP_PKEY* key = nullptr;
};

absl::StatusOr<X509Ptr> BuildCertificate(const Profile& profile, EVP_PKEY* subject_key,
                                         const Issuer& issuer) {
  X509Ptr certificate(X509_new());
  if (certificate == nullptr) return SslFailure("X509_new");
  X509* cert = certificate.get();
  if (X509_set_version(cert, X509_VERSION_3) != 1) return SslFailure("X509_set_version");
  if (absl::Status s = SetRandomSerial(cert); !s.ok()) return s;

  const absl::Time now = absl::Now();
  const absl::Time not_after = now + profile.validity;
  if (issuer.certificate != nullptr) {
    absl::StatusOr<absl::Time> ca_not_after = ToTime(X509_get0_notAfter(issuer.certificate));
    if (!ca_not_after.ok()) return ca_not_after.status();
    if (*ca_not_after <= now) {
      return absl::InvalidArgumentError(
          absl::StrCat("the CA certificate expired at ", Rfc3339Utc(*ca_not_after)));
    }
    if (not_after > *ca_not_after) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the certificate would outlive its CA, which expires at ", Rfc3339Utc(*ca_not_after),
          ": ask for a shorter validity or create a new CA"));
    }
  }
  if (absl::Status s = SetTime(X509_getm_notBefore(cert), now - kBackdate); !s.ok()) return s;
  if (absl::Status s = SetTime(X509_getm_notAfter(cert), not_after); !s.ok()) return s;

  X509_NAME* subject = X509_get_subject_name(cert);
  if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(profile.common_name.data()),
                                 static_cast<int>(profile.common_name.size()), -1, 0) != 1) {
    return SslFailure("setting the subject name");
  }
  X509_NAME* issuer_name =
      issuer.certificate != nullptr ? X509_get_subject_name(issuer.certificate) : subject;
  if (X509_set_issuer_name(cert, issuer_name) != 1) return SslFailure("X509_set_issuer_name");
  if (X509_set_pubkey(cert, subject_key) != 1) return SslFailure("X509_set_pubkey");

  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer.certificate != nullptr ? issuer.certificate : cert, cert, nullptr,
                 nullptr, 0);
  if (issuer.certificate == nullptr && X509V3_set_issuer_pkey(&context, issuer.key) != 1) {
    return SslFailure("X509V3_set_issuer_pkey");
  }
  struct {
    int nid;
    const char* value;
  } const extensions[] = {
      {NID_basic_constraints, profile.basic_constraints},
      {NID_key_usage, profile.key_usage},
      {NID_ext_key_usage, profile.extended_key_usage},
      // The subject key id first: a self-signed authority key id refers to it.
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
  };
  for (const auto& extension : extensions) {
    if (extension.value == nullptr) continue;
    if (absl::Status s = AddExtension(cert, &context, extension.nid, extension.value); !s.ok()) {
      return s;
    }
  }
  if (profile.alt_names != nullptr &&
      X509_add1_ext_i2d(cert, NID_subject_alt_name, profile.alt_names, 0, X509V3_ADD_DEFAULT) !=
          1) {
    return SslFailure("adding the subject alternative names");
  }

  if (X509_sign(cert, issuer.key, EVP_sha256()) <= 0) return SslFailure("X509_sign");
  return certificate;
}

// A CA pair that can issue: the key matches the certificate, which is a CA.
struct LoadedCa {
  X509Ptr certificate;
  PkeyPtr key;
};

absl::StatusOr<LoadedCa> LoadCa(const KeyAndCertificate& ca) {
  absl::StatusOr<X509Ptr> certificate = ParseCertificate(ca.certificate_pem, "the CA certificate");
  if (!certificate.ok()) return certificate.status();
  absl::StatusOr<PkeyPtr> key = ParsePrivateKey(ca.private_key_pem, "the CA private key");
  if (!key.ok()) return key.status();
  if (X509_check_private_key(certificate->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the CA private key does not match the CA certificate");
  }
  if (X509_check_ca(certificate->get()) != 1) {
    return absl::InvalidArgumentError(
        "the CA certificate is not a CA certificate (no basicConstraints CA:TRUE with "
        "keyCertSign)");
  }
  return LoadedCa{*std::move(certificate), *std::move(key)};
}

// A new key and a certificate for it signed by `ca`.
absl::StatusOr<KeyAndCertificate> Issue(const KeyAndCertificate& ca, const Profile& profile) {
  if (absl::Status s = CheckValidity(profile.validity); !s.ok()) return s;
  absl::StatusOr<LoadedCa> loaded = LoadCa(ca);
  if (!loaded.ok()) return loaded.status();
  absl::StatusOr<PkeyPtr> key = GenerateKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> certificate =
      BuildCertificate(profile, key->get(), {loaded->certificate.get(), loaded->key.get()});
  if (!certificate.ok()) return certificate.status();
  absl::StatusOr<std::string> certificate_pem = CertificateToPem(certificate->get());
  if (!certificate_pem.ok()) return certificate_pem.status();
  absl::StatusOr<crypto::SecretBytes> key_pem = PrivateKeyToPem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  return KeyAndCertificate{*std::move(certificate_pem), *std::move(key_pem)};
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "write", path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// A temporary file beside `path` holding `contents` with `mode`, synced.
// Returns its name; nothing is left behind on failure.
absl::StatusOr<std::string> WriteTemporary(const std::string& path, absl::string_view contents,
                                           unsigned mode) {
  const std::string temporary =
      absl::StrCat(path, ".tmp-", crypto::HexEncode(crypto::RandomBytes(8)));
  // 0600 from the start: key bytes are never in a file others can read, even
  // for a moment, whatever the umask.
  const int fd =
      open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return FileError(errno, "create", path);
  absl::Status status = WriteAll(fd, contents.data(), contents.size(), path);
  // fchmod, not the umask-filtered open mode: the promised modes are exact.
  if (status.ok() && fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    status = FileError(errno, "set the mode of", path);
  }
  if (status.ok() && fsync(fd) != 0) status = FileError(errno, "sync", path);
  if (close(fd) != 0 && status.ok()) status = FileError(errno, "close", path);
  if (!status.ok()) {
    unlink(temporary.c_str());
    return status;
  }
  return temporary;
}

// Moves `temporary` to `path`: rename(2) replaces an existing file; link(2)
// fails with EEXIST instead, atomically, so !overwrite never clobbers.
absl::Status Publish(const std::string& temporary, const std::string& path, bool overwrite) {
  absl::Status status;
  if (overwrite) {
    if (rename(temporary.c_str(), path.c_str()) != 0) status = FileError(errno, "write", path);
  } else if (link(temporary.c_str(), path.c_str()) != 0) {
    status = FileError(errno, "write", path);
  }
  if (!overwrite || !status.ok()) unlink(temporary.c_str());
  return status;
}

void SyncDirectory(const std::string& path) {
  // Best effort: makes the rename durable on a crash right after it.
  const int fd = open(Dirname(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  close(fd);
}

absl::Status RefuseExisting(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(path, " already exists"));
  }
  return absl::OkStatus();
}

template <typename T>
T ZeroBuffer(size_t size);
template <>
std::string ZeroBuffer<std::string>(size_t size) {
  return std::string(size, '\0');
}
template <>
crypto::SecretBytes ZeroBuffer<crypto::SecretBytes>(size_t size) {
  return crypto::SecretBytes(size);
}

// Reads a regular file of at most kMaxPemBytes into `T` (std::string or
// SecretBytes); the bytes go straight into `T`'s memory.
template <typename T>
absl::StatusOr<T> ReadSmallFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError(errno, "open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return FileError(err, "stat", path);
  }
  if (!S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) > kMaxPemBytes) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a regular file of at most ", kMaxPemBytes, " bytes"));
  }
  T contents = ZeroBuffer<T>(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = read(fd, &contents.data()[done], contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return FileError(err, "read", path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  close(fd);
  if (done != contents.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " changed while it was read"));
  }
  return contents;
}

std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    ERR_clear_error();
    return "";
  }
  BUF_MEM* buffer = nullptr;
  BIO_get_mem_ptr(bio.get(), &buffer);
  return buffer == nullptr ? "" : std::string(buffer->data, buffer->length);
}

}  // namespace

absl::StatusOr<KeyAndCertificate> CreateCertificateAuthority(const CaOptions& options) {
  if (absl::Status s = CheckCommonName(options.common_name); !s.ok()) return s;
  if (absl::Status s = CheckValidity(options.validity); !s.ok()) return s;
  absl::StatusOr<PkeyPtr> key = GenerateKey();
  if (!key.ok()) return key.status();
  const Profile profile{options.common_name,
                        options.validity,
                        "critical,CA:TRUE,pathlen:0",
                        "critical,keyCertSign,cRLSign",
                        nullptr,
                        nullptr};
  absl::StatusOr<X509Ptr> certificate =
      BuildCertificate(profile, key->get(), {nullptr, key->get()});
  if (!certificate.ok()) return certificate.status();
  absl::StatusOr<std::string> certificate_pem = CertificateToPem(certificate->get());
  if (!certificate_pem.ok()) return certificate_pem.status();
  absl::StatusOr<crypto::SecretBytes> key_pem = PrivateKeyToPem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  return KeyAndCertificate{*std::move(certificate_pem), *std::move(key_pem)};
}

absl::StatusOr<KeyAndCertificate> IssueServerCertificate(const KeyAndCertificate& ca,
                                                         const ServerCertOptions& options) {
  if (absl::Status s = CheckCommonName(options.common_name); !s.ok()) return s;
  if (options.dns_names.empty() && options.ip_addresses.empty()) {
    return absl::InvalidArgumentError(
        "a server certificate needs at least one DNS name or IP address");
  }
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (names == nullptr) return SslFailure("GENERAL_NAMES_new");
  for (const std::string& dns : options.dns_names) {
    if (absl::Status s = CheckDnsName(dns); !s.ok()) return s;
    if (absl::Status s = AddIa5Name(names.get(), GEN_DNS, dns); !s.ok()) return s;
  }
  for (const std::string& ip : options.ip_addresses) {
    if (absl::Status s = AddIpAddress(names.get(), ip); !s.ok()) return s;
  }
  return Issue(ca, {options.common_name, options.validity, "critical,CA:FALSE",
                    "critical,digitalSignature", "serverAuth", names.get()});
}

absl::StatusOr<KeyAndCertificate> IssueClientCertificate(const KeyAndCertificate& ca,
                                                         const ClientCertOptions& options) {
  absl::StatusOr<kms::policy::PrincipalName> principal =
      kms::policy::ParsePrincipal(options.principal);
  if (!principal.ok()) return principal.status();
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (names == nullptr) return SslFailure("GENERAL_NAMES_new");
  if (absl::Status s = AddIa5Name(names.get(), GEN_URI,
                                  absl::StrCat(kms::auth::kPrincipalUriScheme, options.principal));
      !s.ok()) {
    return s;
  }
  std::set<std::string> seen;
  for (const std::string& group : options.groups) {
    absl::StatusOr<kms::policy::PrincipalName> parsed = kms::policy::ParsePrincipalOrGroup(group);
    if (!parsed.ok()) return parsed.status();
    if (!parsed->is_group) {
      return absl::InvalidArgumentError(
          absl::StrCat(group, " is a principal, not a group (tenants/{t}/groups/{id})"));
    }
    if (parsed->tenant != principal->tenant) {
      return absl::InvalidArgumentError(absl::StrCat("group ", group, " is of another tenant than ",
                                                     "principal ", options.principal));
    }
    if (!seen.insert(group).second) {
      return absl::InvalidArgumentError(absl::StrCat("group ", group, " is given twice"));
    }
    if (absl::Status s =
            AddIa5Name(names.get(), GEN_URI, absl::StrCat(kms::auth::kGroupUriScheme, group));
        !s.ok()) {
      return s;
    }
  }
  return Issue(ca, {PrincipalCommonName(options.principal), options.validity, "critical,CA:FALSE",
                    "critical,digitalSignature", "clientAuth", names.get()});
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents, unsigned mode,
                                 bool overwrite) {
  if (path.empty()) return absl::InvalidArgumentError("the output path is empty");
  absl::StatusOr<std::string> temporary = WriteTemporary(path, contents, mode);
  if (!temporary.ok()) return temporary.status();
  if (absl::Status s = Publish(*temporary, path, overwrite); !s.ok()) return s;
  SyncDirectory(path);
  return absl::OkStatus();
}

absl::Status WriteKeyAndCertificate(const KeyAndCertificate& pair, const std::string& prefix,
                                    bool overwrite) {
  if (prefix.empty()) return absl::InvalidArgumentError("the output prefix is empty");
  if (pair.certificate_pem.empty() || pair.private_key_pem.empty()) {
    return absl::InvalidArgumentError("nothing to write: the certificate or key is empty");
  }
  const std::string certificate_path = absl::StrCat(prefix, ".crt");
  const std::string key_path = absl::StrCat(prefix, ".key");
  if (!overwrite) {
    // Checked up front for a clear error; Publish's link() is what makes it
    // safe against a file that appears in between.
    if (absl::Status s = RefuseExisting(certificate_path); !s.ok()) return s;
    if (absl::Status s = RefuseExisting(key_path); !s.ok()) return s;
  }
  absl::StatusOr<std::string> key_temporary =
      WriteTemporary(key_path, pair.private_key_pem.view(), 0600);
  if (!key_temporary.ok()) return key_temporary.status();
  absl::StatusOr<std::string> certificate_temporary =
      WriteTemporary(certificate_path, pair.certificate_pem, 0644);
  if (!certificate_temporary.ok()) {
    unlink(key_temporary->c_str());
    return certificate_temporary.status();
  }
  if (absl::Status s = Publish(*key_temporary, key_path, overwrite); !s.ok()) {
    unlink(certificate_temporary->c_str());
    return s;
  }
  if (absl::Status s = Publish(*certificate_temporary, certificate_path, overwrite); !s.ok()) {
    // Without overwrite the key file is the one just created: take it back
    // rather than leave half a pair.
    if (!overwrite) unlink(key_path.c_str());
    return s;
  }
  SyncDirectory(key_path);
  return absl::OkStatus();
}

absl::StatusOr<KeyAndCertificate> ReadKeyAndCertificate(const std::string& prefix) {
  const std::string certificate_path = absl::StrCat(prefix, ".crt");
  const std::string key_path = absl::StrCat(prefix, ".key");
  absl::StatusOr<std::string> certificate_pem = ReadSmallFile<std::string>(certificate_path);
  if (!certificate_pem.ok()) return certificate_pem.status();
  absl::StatusOr<crypto::SecretBytes> key_pem = ReadSmallFile<crypto::SecretBytes>(key_path);
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<X509Ptr> certificate = ParseCertificate(*certificate_pem, certificate_path);
  if (!certificate.ok()) return certificate.status();
  absl::StatusOr<PkeyPtr> key = ParsePrivateKey(*key_pem, key_path);
  if (!key.ok()) return key.status();
  if (X509_check_private_key(certificate->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, " does not hold the key of ", certificate_path));
  }
  return KeyAndCertificate{*std::move(certificate_pem), *std::move(key_pem)};
}

absl::StatusOr<CertificateInfo> DescribeCertificate(absl::string_view certificate_pem) {
  absl::StatusOr<X509Ptr> parsed = ParseCertificate(certificate_pem, "the certificate");
  if (!parsed.ok()) return parsed.status();
  X509* certificate = parsed->get();
  CertificateInfo info;
  info.subject = NameToString(X509_get_subject_name(certificate));
  info.issuer = NameToString(X509_get_issuer_name(certificate));
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr));
  if (serial != nullptr) {
    char* hex = BN_bn2hex(serial.get());
    if (hex != nullptr) info.serial_hex = hex;
    OPENSSL_free(hex);
  }
  absl::StatusOr<absl::Time> not_before = ToTime(X509_get0_notBefore(certificate));
  if (!not_before.ok()) return not_before.status();
  absl::StatusOr<absl::Time> not_after = ToTime(X509_get0_notAfter(certificate));
  if (!not_after.ok()) return not_after.status();
  info.not_before = *not_before;
  info.not_after = *not_after;
  info.is_ca = X509_check_ca(certificate) == 1;

  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    const void* value = GENERAL_NAME_get0_value(name, &type);
    const auto* text = static_cast<const ASN1_STRING*>(value);
    const std::string bytes(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                            static_cast<size_t>(ASN1_STRING_length(text)));
    if (type == GEN_DNS) {
      info.dns_names.push_back(bytes);
    } else if (type == GEN_URI) {
      info.uris.push_back(bytes);
    } else if (type == GEN_IPADD && (bytes.size() == 4 || bytes.size() == 16)) {
      char address[INET6_ADDRSTRLEN];
      if (inet_ntop(bytes.size() == 4 ? AF_INET : AF_INET6, bytes.data(), address,
                    sizeof(address)) != nullptr) {
        info.ip_addresses.push_back(address);
      }
    }
  }
  ERR_clear_error();
  return info;
}

}  // namespace clavis::pki
