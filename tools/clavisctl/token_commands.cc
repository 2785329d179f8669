#include "tools/clavisctl/token_commands.h"

#include <sys/stat.h>

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "kms/auth/service_token.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/input.h"
#include "tools/clavisctl/json_output.h"
#include "tools/clavisctl/pki_commands.h"
#include "tools/clavisctl/table.h"
#include "tools/clavisctl/wipe.h"
#include "tools/pki/pki.h"

namespace clavis::clavisctl {
namespace {

// clavisd's default tokens.max_lifetime_s.
constexpr absl::Duration kDefaultMaxLifetime = absl::Hours(24);
constexpr size_t kMaxIdLength = 64;

std::string Rfc3339Utc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// Key ids and token ids: 1-64 of [A-Za-z0-9._-] (service_token.h).
absl::Status CheckId(absl::string_view id, absl::string_view option) {
  bool ok = !id.empty() && id.size() <= kMaxIdLength;
  for (char c : id) {
    ok = ok &&
         (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  if (!ok) return UsageError(absl::StrCat(option, " must be 1-64 of A-Z a-z 0-9 . _ -"));
  return absl::OkStatus();
}

// The seed file: 64 hex digits (surrounding whitespace ignored). Nothing of
// its contents ever goes into a message.
absl::StatusOr<crypto::SecretBytes> ReadSeed(Session& session, const std::string& path) {
  const std::string where = absl::StrCat("--issuer-seed ", absl::CHexEscape(path));
  absl::StatusOr<std::string> contents = ReadFile(path, 1024);
  if (!contents.ok()) return UsageError(absl::StrCat(where, ": ", contents.status().message()));
  absl::string_view hex = absl::StripAsciiWhitespace(*contents);
  absl::StatusOr<std::string> seed = absl::InvalidArgumentError("");
  if (hex.size() == 2 * crypto::Ed25519KeyPair::kSeedSize) seed = crypto::HexDecode(hex);
  WipeString(&*contents);
  if (!seed.ok()) {
    return UsageError(absl::StrCat(where,
                                   " does not hold an issuer seed (64 hex digits, as "
                                   "written by clavisctl token keygen)"));
  }
  crypto::SecretBytes secret = crypto::SecretBytes::CopyOf(*seed);
  WipeString(&*seed);
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    session.err() << "clavisctl: warning: " << absl::CHexEscape(path)
                  << " can be read by other users; whoever reads it can issue tokens (chmod 600 "
                     "it)\n";
  }
  return secret;
}

}  // namespace

absl::Status TokenKeygen(Session& session, const TokenKeygenArgs& args) {
  if (args.out.empty()) return UsageError("--out is empty");
  if (absl::Status s = CheckId(args.key_id, "--key-id"); !s.ok()) return s;
  crypto::Ed25519KeyPair pair = crypto::Ed25519KeyPair::Generate();
  const std::string seed_file = absl::StrCat(args.out, ".seed");
  std::string encoded = crypto::HexEncode(pair.seed.view());
  std::string hex;
  hex.reserve(encoded.size() + 1);  // no reallocation leaves an unwiped copy
  hex.append(encoded).push_back('\n');
  WipeString(&encoded);
  absl::Status written = pki::WriteFileAtomically(seed_file, hex, 0600, args.force);
  WipeString(&hex);
  if (!written.ok()) return LocalCommandError(written);

  const std::string public_key = crypto::Base64Encode(pair.public_key);
  google::protobuf::Struct fields;
  (*fields.mutable_fields())["keyId"].set_string_value(args.key_id);
  (*fields.mutable_fields())["publicKey"].set_string_value(public_key);
  (*fields.mutable_fields())["seedFile"].set_string_value(seed_file);
  // The one line stdout holds is what clavisd's issuers file takes.
  absl::Status status =
      session.Print(fields, absl::StrCat(TerminalSafe(args.key_id), " ", public_key, "\n"));
  if (status.ok() && !session.json()) {
    session.err() << "clavisctl: wrote " << seed_file
                  << " (the issuer's private seed, mode 0600: keep it secret); add the line "
                     "above to clavisd's --token_issuers_file\n";
  }
  return status;
}

absl::Status TokenIssue(Session& session, const TokenIssueArgs& args) {
  if (args.issuer_seed_file.empty()) return UsageError("--issuer-seed is empty");
  if (absl::Status s = CheckId(args.key_id, "--key-id"); !s.ok()) return s;
  if (!args.token_id.empty()) {
    if (absl::Status s = CheckId(args.token_id, "--token-id"); !s.ok()) return s;
  }
  absl::StatusOr<absl::Duration> ttl = ParseDuration(args.ttl);
  if (!ttl.ok()) return AsUsageError(ttl.status());
  if (*ttl <= absl::ZeroDuration()) return UsageError("--ttl must be longer than 0s");

  kms::auth::TokenClaims claims;
  claims.issuer_key_id = args.key_id;
  claims.principal = args.principal;
  claims.groups = args.groups;
  claims.audience = args.audience;
  // Whole seconds: what the token format carries.
  claims.issued_at = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  claims.expires_at = claims.issued_at + *ttl;
  claims.token_id = args.token_id.empty()
                        ? absl::StrCat("t-", crypto::HexEncode(crypto::RandomBytes(12)))
                        : args.token_id;

  absl::StatusOr<crypto::SecretBytes> seed = ReadSeed(session, args.issuer_seed_file);
  if (!seed.ok()) return seed.status();
  absl::StatusOr<std::string> token = kms::auth::SignServiceToken(claims, *seed);
  // InvalidArgument: a claim from the command line is malformed.
  if (!token.ok()) return LocalCommandError(token.status());
  if (*ttl > kDefaultMaxLifetime) {
    session.err() << "clavisctl: warning: clavisd refuses tokens that live longer than its "
                     "tokens.max_lifetime_s (24h by default)\n";
  }

  google::protobuf::Struct fields;
  auto& f = *fields.mutable_fields();
  f["tokenId"].set_string_value(claims.token_id);
  f["principal"].set_string_value(claims.principal);
  f["audience"].set_string_value(claims.audience);
  f["issuedAt"].set_string_value(Rfc3339Utc(claims.issued_at));
  f["expiresAt"].set_string_value(Rfc3339Utc(claims.expires_at));

  absl::Status status;
  if (args.out.empty()) {
    if (session.json()) {
      f["token"].set_string_value(*token);
      absl::StatusOr<std::string> json = ToJson(fields);
      WipeString(f["token"].mutable_string_value());
      status = json.status();
      if (json.ok()) {
        session.out() << *json;
        WipeString(&*json);
      }
    } else {
      // Only the token on stdout, so `clavisctl token issue ... > app.token`
      // (or $(...)) just works.
      session.out() << *token << "\n";
    }
  } else {
    std::string contents = absl::StrCat(*token, "\n");
    status = pki::WriteFileAtomically(args.out, contents, 0600, args.force);
    WipeString(&contents);
    if (status.ok()) {
      f["tokenFile"].set_string_value(args.out);
      status = session.Print(fields, FormatTable({{"token file", args.out + " (mode 0600)"},
                                                  {"token id", claims.token_id},
                                                  {"principal", claims.principal},
                                                  {"audience", claims.audience},
                                                  {"expires", Rfc3339Utc(claims.expires_at)}}));
    } else {
      status = LocalCommandError(status);
    }
  }
  WipeString(&*token);
  return status;
}

void RegisterTokenCommands(CommandRegistry& registry) {
  CLI::App* token = registry.AddNoun(
      registry.root(), "token",
      "Service tokens: issuer keys and signed bearer tokens (local; no server needed)",
      {"clavisctl token keygen --out issuer --key-id ops-2026",
       "clavisctl token issue --issuer-seed issuer.seed --key-id ops-2026 "
       "--principal tenants/acme/principals/batch --audience kms-prod --ttl 1h > batch.token"},
      /*local=*/true);
  {
    auto args = std::make_shared<TokenKeygenArgs>();
    CLI::App* c = registry.AddLocalCommand(
        *token, "keygen",
        "Create a token issuer key: PREFIX.seed (mode 0600); prints \"<key id> <public key>\" "
        "for clavisd's --token_issuers_file",
        {"clavisctl token keygen --out issuer --key-id ops-2026 >> issuers"},
        [args](Session& s) { return TokenKeygen(s, *args); });
    c->add_option("--out", args->out, "Writes PREFIX.seed")->type_name("PREFIX")->required();
    c->add_option("--key-id", args->key_id, "The issuer key's id, named in every token it signs")
        ->type_name("ID")
        ->required();
    c->add_flag("--force", args->force, "Overwrite an existing seed file");
  }
  {
    auto args = std::make_shared<TokenIssueArgs>();
    CLI::App* c = registry.AddLocalCommand(
        *token, "issue",
        "Sign a service token for a principal; prints it (or writes --out, mode 0600)",
        {"clavisctl token issue --issuer-seed issuer.seed --key-id ops-2026 "
         "--principal tenants/acme/principals/batch --group tenants/acme/groups/jobs "
         "--audience kms-prod --ttl 1h --out batch.token"},
        [args](Session& s) { return TokenIssue(s, *args); });
    c->add_option("--issuer-seed", args->issuer_seed_file, "The seed file from token keygen")
        ->type_name("FILE")
        ->required();
    c->add_option("--key-id", args->key_id, "The issuer key's id (as in clavisd's issuers file)")
        ->type_name("ID")
        ->required();
    c->add_option("--principal", args->principal, "Who the token authenticates")
        ->type_name("tenants/T/principals/ID")
        ->required();
    c->add_option("--group", args->groups, "A group of the principal; repeat for more")
        ->type_name("tenants/T/groups/G");
    c->add_option("--audience", args->audience,
                  "The clavisd deployment the token is for (its --token_audience)")
        ->type_name("AUD")
        ->required();
    c->add_option("--ttl", args->ttl, "How long the token is valid")
        ->type_name("DURATION")
        ->check(DurationCheck())
        ->capture_default_str();
    c->add_option("--token-id", args->token_id,
                  "The token's unique id, what revocation names (default: random)")
        ->type_name("ID");
    c->add_option("--out", args->out, "Write the token to FILE (mode 0600) instead of stdout")
        ->type_name("FILE");
    c->add_flag("--force", args->force, "Overwrite an existing --out file");
  }
}

}  // namespace clavis::clavisctl
