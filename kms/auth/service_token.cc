#include "kms/auth/service_token.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "crypto/byte_io.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "kms/keys/names.h"
#include "kms/policy/principal.h"
#include "spdlog/spdlog.h"

namespace clavis::kms::auth {
namespace {

// Wire constants of docs/FORMAT.md, "Service token (v1)".
constexpr uint8_t kClaimsVersion = 1;
constexpr size_t kSignatureSize = crypto::Ed25519KeyPair::kSignatureSize;
constexpr size_t kMaxIdLength = 64;         // issuer_key_id, token_id
constexpr size_t kMaxAudienceLength = 256;  // audience
constexpr size_t kMaxNameLength = 1024;     // principal, groups (u16 prefix)
// How often the revocation file's metadata is looked at, at most.
constexpr absl::Duration kRevocationCheckInterval = absl::Seconds(1);
// A revocation file larger than this is refused (fail closed).
constexpr size_t kMaxRevocationFileBytes = 16 << 20;

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string DurationText(absl::Duration d) { return absl::FormatDuration(d); }

// 1-64 of [A-Za-z0-9._-].
absl::Status ValidateTokenId(absl::string_view what, absl::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be 1-", kMaxIdLength, " characters, got ", id.size()));
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", QuoteForError(id), " may contain only A-Z, a-z, 0-9, '.', '_', '-'"));
    }
  }
  return absl::OkStatus();
}

// 1-256 printable ASCII characters, no space.
absl::Status ValidateAudience(absl::string_view audience) {
  if (audience.empty() || audience.size() > kMaxAudienceLength) {
    return absl::InvalidArgumentError(absl::StrCat("audience must be 1-", kMaxAudienceLength,
                                                   " characters, got ", audience.size()));
  }
  for (char c : audience) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "audience ", QuoteForError(audience), " may contain only printable ASCII, no spaces"));
    }
  }
  return absl::OkStatus();
}

// Every name and id rule of the claims, and the tenant of every group.
// Returns the principal's tenant.
absl::StatusOr<std::string> ValidateClaimNames(const TokenClaims& claims) {
  if (absl::Status s = ValidateTokenId("issuer key id", claims.issuer_key_id); !s.ok()) return s;
  if (absl::Status s = ValidateTokenId("token id", claims.token_id); !s.ok()) return s;
  if (absl::Status s = ValidateAudience(claims.audience); !s.ok()) return s;
  absl::StatusOr<policy::PrincipalName> principal = policy::ParsePrincipal(claims.principal);
  if (!principal.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("principal: ", principal.status().message()));
  }
  if (claims.groups.size() > kMaxTokenGroups) {
    return absl::InvalidArgumentError(absl::StrCat("a token names at most ", kMaxTokenGroups,
                                                   " groups, got ", claims.groups.size()));
  }
  absl::flat_hash_set<absl::string_view> seen;
  for (const std::string& group : claims.groups) {
    absl::StatusOr<policy::PrincipalName> parsed = policy::ParsePrincipalOrGroup(group);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("group: ", parsed.status().message()));
    }
    if (!parsed->is_group) {
      return absl::InvalidArgumentError(
          absl::StrCat("group ", QuoteForError(group), " is not tenants/{tenant}/groups/{id}"));
    }
    if (parsed->tenant != principal->tenant) {
      return absl::InvalidArgumentError(absl::StrCat("group ", QuoteForError(group),
                                                     " is of another tenant than principal ",
                                                     QuoteForError(claims.principal)));
    }
    if (!seen.insert(group).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("group ", QuoteForError(group), " is named twice"));
    }
  }
  return principal->tenant;
}

std::string EncodeClaims(const TokenClaims& claims) {
  std::string out;
  crypto::ByteWriter w(&out);
  w.U8(kClaimsVersion);
  w.U8Prefixed(claims.issuer_key_id);
  w.U16Prefixed(claims.principal);
  w.U16Prefixed(claims.audience);
  w.U8Prefixed(claims.token_id);
  w.U8(static_cast<uint8_t>(claims.groups.size()));
  for (const std::string& group : claims.groups) w.U16Prefixed(group);
  w.U64(static_cast<uint64_t>(absl::ToUnixSeconds(claims.issued_at)));
  w.U64(static_cast<uint64_t>(absl::ToUnixSeconds(claims.expires_at)));
  return out;
}

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed token: ", why));
}

// Strict decoding of the claims bytes; errors are "malformed token: ...".
// Sets *tenant to the principal's tenant.
absl::StatusOr<TokenClaims> DecodeClaims(absl::string_view bytes, std::string* tenant) {
  crypto::ByteReader r(bytes);
  uint8_t version = 0;
  if (!r.ReadU8(&version)) return Malformed("claims are truncated");
  if (version != kClaimsVersion) {
    return Malformed(absl::StrCat("unsupported claims version ", version, " (expected 1)"));
  }
  TokenClaims claims;
  absl::string_view issuer, principal, audience, token_id;
  uint8_t group_count = 0;
  if (!r.ReadU8Prefixed(&issuer) || !r.ReadU16Prefixed(&principal) ||
      !r.ReadU16Prefixed(&audience) || !r.ReadU8Prefixed(&token_id) || !r.ReadU8(&group_count)) {
    return Malformed("claims are truncated");
  }
  if (group_count > kMaxTokenGroups) {
    return Malformed(
        absl::StrCat(group_count, " groups, more than the limit of ", kMaxTokenGroups));
  }
  claims.issuer_key_id = std::string(issuer);
  claims.principal = std::string(principal);
  claims.audience = std::string(audience);
  claims.token_id = std::string(token_id);
  for (int i = 0; i < group_count; ++i) {
    absl::string_view group;
    if (!r.ReadU16Prefixed(&group)) return Malformed("claims are truncated");
    if (group.size() > kMaxNameLength) return Malformed("group name is too long");
    claims.groups.emplace_back(group);
  }
  uint64_t issued_at = 0, expires_at = 0;
  if (!r.ReadU64(&issued_at) || !r.ReadU64(&expires_at)) {
    return Malformed("claims are truncated");
  }
  if (r.remaining() != 0) {
    return Malformed(absl::StrCat(r.remaining(), " unexpected bytes after the claims"));
  }
  const int64_t issued = static_cast<int64_t>(issued_at);
  const int64_t expires = static_cast<int64_t>(expires_at);
  if (expires <= issued) return Malformed("expires_at is not after issued_at");
  claims.issued_at = absl::FromUnixSeconds(issued);
  claims.expires_at = absl::FromUnixSeconds(expires);
  absl::StatusOr<std::string> principal_tenant = ValidateClaimNames(claims);
  if (!principal_tenant.ok()) return Malformed(principal_tenant.status().message());
  *tenant = *std::move(principal_tenant);
  return claims;
}

struct ParsedToken {
  absl::string_view signed_part;  // "clavis-token.v1." || base64url(claims)
  std::string signature;          // 64 bytes
  TokenClaims claims;
  std::string tenant;  // of claims.principal
};

// Size, prefix, structure, base64url and claims; not the signature.
absl::StatusOr<ParsedToken> ParseToken(absl::string_view token) {
  if (token.size() > kMaxTokenBytes) {
    return Malformed(
        absl::StrCat("token of ", token.size(), " bytes is longer than ", kMaxTokenBytes));
  }
  absl::string_view rest = token;
  if (!absl::ConsumePrefix(&rest, kTokenPrefix)) {
    return Malformed(
        absl::StrCat("not a Clavis service token (expected the prefix \"", kTokenPrefix, "\")"));
  }
  const size_t dot = rest.find('.');
  if (dot == absl::string_view::npos) return Malformed("missing signature part");
  const absl::string_view claims_text = rest.substr(0, dot);
  const absl::string_view signature_text = rest.substr(dot + 1);
  if (claims_text.empty()) return Malformed("empty claims part");
  if (signature_text.find('.') != absl::string_view::npos) {
    return Malformed("more than three '.'-separated parts after the prefix");
  }
  absl::StatusOr<std::string> claims_bytes =
      crypto::Base64Decode(claims_text, crypto::Base64Variant::kUrlSafeNoPadding);
  if (!claims_bytes.ok()) {
    return Malformed(absl::StrCat("claims part: ", claims_bytes.status().message()));
  }
  absl::StatusOr<std::string> signature =
      crypto::Base64Decode(signature_text, crypto::Base64Variant::kUrlSafeNoPadding);
  if (!signature.ok()) {
    return Malformed(absl::StrCat("signature part: ", signature.status().message()));
  }
  if (signature->size() != kSignatureSize) {
    return Malformed(
        absl::StrCat("signature of ", signature->size(), " bytes, expected ", kSignatureSize));
  }
  ParsedToken parsed;
  absl::StatusOr<TokenClaims> claims = DecodeClaims(*claims_bytes, &parsed.tenant);
  if (!claims.ok()) return claims.status();
  parsed.signed_part = token.substr(0, token.size() - signature_text.size() - 1);
  parsed.signature = *std::move(signature);
  parsed.claims = *std::move(claims);
  return parsed;
}

// What identifies a version of the revocation file without reading it.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  timespec ctime{};
  bool operator==(const FileStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
           ctime.tv_nsec == o.ctime.tv_nsec;
  }
};

FileStamp StampOf(const struct stat& st) {
  FileStamp s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime = st.st_mtim;
  s.ctime = st.st_ctim;
  return s;
}

// Reads a regular file whole. Errors name the path and errno, never content.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open: ", std::strerror(errno)));
  struct stat st {};
  std::string content;
  absl::Status status;
  if (fstat(fd, &st) != 0) {
    status = absl::UnavailableError(absl::StrCat("cannot stat: ", std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::UnavailableError("not a regular file");
  } else {
    char buffer[65536];
    while (true) {
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = absl::UnavailableError(absl::StrCat("cannot read: ", std::strerror(errno)));
        break;
      }
      if (n == 0) break;
      content.append(buffer, static_cast<size_t>(n));
      if (content.size() > kMaxRevocationFileBytes) {
        status = absl::UnavailableError(
            absl::StrCat("larger than the limit of ", kMaxRevocationFileBytes, " bytes"));
        break;
      }
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return content;
}

// One token id per line; '#' starts a comment; blank lines and surrounding
// whitespace are ignored. Any other line makes the whole file invalid.
absl::StatusOr<absl::flat_hash_set<std::string>> ParseRevocationList(absl::string_view text) {
  absl::flat_hash_set<std::string> ids;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const size_t hash = line.find('#');
    if (hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (absl::Status s = ValidateTokenId("token id", line); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", s.message()));
    }
    ids.insert(std::string(line));
  }
  return ids;
}

class TokenVerifierImpl : public TokenVerifier {
 public:
  TokenVerifierImpl(TokenVerifierOptions options, const Clock* clock)
      : options_(std::move(options)), clock_(clock) {
    for (const TrustedIssuer& issuer : options_.issuers) {
      issuers_.emplace(issuer.key_id, issuer.public_key);
    }
  }

  bool SignatureValid(absl::string_view token) const override {
    absl::StatusOr<ParsedToken> parsed = ParseToken(token);
    if (!parsed.ok()) return false;
    auto issuer = issuers_.find(parsed->claims.issuer_key_id);
    return issuer != issuers_.end() &&
           crypto::Ed25519Verify(issuer->second, parsed->signed_part, parsed->signature).ok();
  }

  absl::StatusOr<Identity> Verify(absl::string_view token) const override {
    absl::StatusOr<ParsedToken> parsed = ParseToken(token);
    if (!parsed.ok()) return absl::UnauthenticatedError(parsed.status().message());
    const TokenClaims& claims = parsed->claims;

    auto issuer = issuers_.find(claims.issuer_key_id);
    if (issuer == issuers_.end()) {
      return absl::UnauthenticatedError(
          absl::StrCat("unknown token issuer key \"", claims.issuer_key_id, "\""));
    }
    if (!crypto::Ed25519Verify(issuer->second, parsed->signed_part, parsed->signature).ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat("token signature is not valid (issuer key \"", claims.issuer_key_id, "\")"));
    }

    // Only signed claims from here on.
    if (claims.audience != options_.audience) {
      // Both are validated printable ASCII of at most 256 characters.
      return absl::UnauthenticatedError(
          absl::StrCat("token is for audience \"", absl::CHexEscape(claims.audience),
                       "\", this server is \"", absl::CHexEscape(options_.audience), "\""));
    }
    const absl::Time now = clock_->Now();
    if (claims.issued_at > now + options_.clock_skew) {
      return absl::UnauthenticatedError(
          absl::StrCat("token ", claims.token_id, " is not valid yet: issued at ",
                       TimeText(claims.issued_at), ", server time is ", TimeText(now),
                       " (allowed clock skew ", DurationText(options_.clock_skew), ")"));
    }
    if (now > claims.expires_at + options_.clock_skew) {
      return absl::UnauthenticatedError(
          absl::StrCat("token expired at ", TimeText(claims.expires_at), " (token ",
                       claims.token_id, ", server time ", TimeText(now), ", allowed clock skew ",
                       DurationText(options_.clock_skew), ")"));
    }
    const absl::Duration lifetime = claims.expires_at - claims.issued_at;
    if (lifetime > options_.max_lifetime) {
      return absl::UnauthenticatedError(absl::StrCat(
          "token ", claims.token_id, " has a lifetime of ", DurationText(lifetime),
          ", longer than this server accepts (", DurationText(options_.max_lifetime), ")"));
    }
    if (absl::Status s = CheckNotRevoked(claims.token_id); !s.ok()) return s;

    Identity identity;
    identity.principal = claims.principal;
    identity.tenant = parsed->tenant;
    identity.groups = claims.groups;
    identity.method = AuthMethod::kToken;
    identity.token_id = claims.token_id;
    return identity;
  }

 private:
  absl::Status CheckNotRevoked(const std::string& token_id) const {
    if (options_.revocation_file.empty()) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    MaybeReloadLocked();
    if (!load_error_.ok()) {
      // Unavailable, not Unauthenticated: the server is misconfigured, the
      // caller's credential may be fine (and must not count towards its
      // lock-out).
      return absl::UnavailableError(
          absl::StrCat("token ", token_id, " refused: the revocation list ",
                       QuoteForError(options_.revocation_file), " cannot be used (",
                       load_error_.message(), "), so no token is accepted until it is fixed"));
    }
    if (revoked_.contains(token_id)) {
      return absl::UnauthenticatedError(absl::StrCat("token ", token_id, " was revoked"));
    }
    return absl::OkStatus();
  }

  void MaybeReloadLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = clock_->Now();
    if (checked_once_ && now - last_check_ < kRevocationCheckInterval && now >= last_check_) {
      return;
    }
    checked_once_ = true;
    last_check_ = now;
    const std::string& path = options_.revocation_file;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        if (stamp_.has_value() || !load_error_.ok()) {
          spdlog::warn("token revocation list {} is missing: no token is revoked", path);
        }
        revoked_.clear();
        stamp_.reset();
        load_error_ = absl::OkStatus();
        return;
      }
      SetErrorLocked(absl::UnavailableError(absl::StrCat("cannot stat: ", std::strerror(errno))));
      return;
    }
    const FileStamp stamp = StampOf(st);
    // After a failure, retry every interval even if the file looks the same:
    // the cause may have been transient.
    if (load_error_.ok() && stamp_.has_value() && *stamp_ == stamp) return;
    absl::StatusOr<std::string> content = ReadRegularFile(path);
    if (!content.ok()) {
      SetErrorLocked(content.status());
      return;
    }
    absl::StatusOr<absl::flat_hash_set<std::string>> ids = ParseRevocationList(*content);
    if (!ids.ok()) {
      SetErrorLocked(ids.status());
      return;
    }
    revoked_ = *std::move(ids);
    stamp_ = stamp;
    load_error_ = absl::OkStatus();
    spdlog::info("token revocation list {} loaded: {} revoked token ids", path, revoked_.size());
  }

  void SetErrorLocked(absl::Status error) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (load_error_.ok() || load_error_.message() != error.message()) {
      spdlog::error("token revocation list {} cannot be used ({}): refusing every token",
                    options_.revocation_file, std::string(error.message()));
    }
    revoked_.clear();
    stamp_.reset();
    load_error_ = std::move(error);
  }

  // Constant after construction.
  const TokenVerifierOptions options_;
  const Clock* const clock_;
  absl::flat_hash_map<std::string, std::string> issuers_;  // key id -> public key

  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  mutable std::mutex mu_;
  mutable bool checked_once_ ABSL_GUARDED_BY(mu_) = false;
  mutable absl::Time last_check_ ABSL_GUARDED_BY(mu_);
  mutable std::optional<FileStamp> stamp_ ABSL_GUARDED_BY(mu_);
  mutable absl::Status load_error_ ABSL_GUARDED_BY(mu_);
  mutable absl::flat_hash_set<std::string> revoked_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::string> SignServiceToken(const TokenClaims& claims,
                                             const crypto::SecretBytes& seed) {
  if (seed.size() != crypto::Ed25519KeyPair::kSeedSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Ed25519 seed must be ", crypto::Ed25519KeyPair::kSeedSize, " bytes, got ", seed.size()));
  }
  if (absl::StatusOr<std::string> tenant = ValidateClaimNames(claims); !tenant.ok()) {
    return tenant.status();
  }
  if (claims.issued_at == absl::InfinitePast() || claims.issued_at == absl::InfiniteFuture() ||
      claims.expires_at == absl::InfinitePast() || claims.expires_at == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError("issued_at and expires_at must be finite times");
  }
  // The format carries whole seconds; compare what will be encoded.
  if (absl::ToUnixSeconds(claims.expires_at) <= absl::ToUnixSeconds(claims.issued_at)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expires_at (", TimeText(claims.expires_at),
        ") must be at least one second after issued_at (", TimeText(claims.issued_at), ")"));
  }
  std::string token = absl::StrCat(
      kTokenPrefix,
      crypto::Base64Encode(EncodeClaims(claims), crypto::Base64Variant::kUrlSafeNoPadding));
  absl::StatusOr<std::string> signature = crypto::Ed25519Sign(seed, token);
  if (!signature.ok()) return signature.status();
  absl::StrAppend(&token, ".",
                  crypto::Base64Encode(*signature, crypto::Base64Variant::kUrlSafeNoPadding));
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the token would be ", token.size(),
                                                   " bytes, more than the limit of ",
                                                   kMaxTokenBytes, ": name fewer groups"));
  }
  return token;
}

absl::StatusOr<TokenClaims> DecodeServiceTokenUnverified(absl::string_view token) {
  absl::StatusOr<ParsedToken> parsed = ParseToken(token);
  if (!parsed.ok()) return parsed.status();
  return std::move(parsed->claims);
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> TokenVerifier::Create(TokenVerifierOptions options,
                                                                     const Clock* clock) {
  if (clock == nullptr) return absl::InvalidArgumentError("token verifier needs a clock");
  if (absl::Status s = ValidateAudience(options.audience); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("token verifier: ", s.message()));
  }
  if (options.issuers.empty()) {
    return absl::InvalidArgumentError("token verifier: at least one trusted issuer is required");
  }
  absl::flat_hash_set<std::string> key_ids;
  for (const TrustedIssuer& issuer : options.issuers) {
    if (absl::Status s = ValidateTokenId("issuer key id", issuer.key_id); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("token verifier: ", s.message()));
    }
    if (issuer.public_key.size() != crypto::Ed25519KeyPair::kPublicKeySize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token verifier: public key of issuer \"", issuer.key_id, "\" must be ",
          crypto::Ed25519KeyPair::kPublicKeySize, " bytes, got ", issuer.public_key.size()));
    }
    if (!key_ids.insert(issuer.key_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("token verifier: issuer key id \"", issuer.key_id, "\" is listed twice"));
    }
  }
  if (options.max_lifetime <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("token verifier: max_lifetime must be positive");
  }
  if (options.clock_skew < absl::ZeroDuration() || options.clock_skew > absl::Hours(1)) {
    return absl::InvalidArgumentError("token verifier: clock_skew must be within 0..1h");
  }
  return std::unique_ptr<TokenVerifier>(new TokenVerifierImpl(std::move(options), clock));
}

}  // namespace clavis::kms::auth
