// clavis-rotator against a real clavisd: a due rotation done exactly once by
// racing rotators, every segment key re-wrapped afterwards (also after a
// rotator is killed half-way), destruction at the end of a window, expiry of
// imported material, a compromised version re-wrapped away and retired,
// unused versions retired per the key's setting, segment keys rotated on
// their own period, Prometheus metrics and a clean SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "crypto/random.h"
#include "crypto/rsa_oaep.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/run_shell.h"
#include "tests/testing/unused_port.h"

namespace clavis::testing {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

google::protobuf::Timestamp At(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

// GET http://127.0.0.1:port/metrics, the body ("" on failure).
std::string FetchMetrics(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    (void)::write(fd, request.data(), request.size());
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  }
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

class RotatorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(clavisd_.Start().ok()); }
  void TearDown() override {
    for (pid_t pid : daemons_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  // The rotator's command line, as the tenant's admin (mTLS).
  std::vector<std::string> RotatorArgs(const std::vector<std::string>& extra) {
    const std::string prefix = clavisd_.client_cert_prefix(PrincipalName("acme"));
    std::vector<std::string> args = {CLAVIS_ROTATOR_BINARY,
                                     "--endpoint",
                                     absl::StrCat("localhost:", clavisd_.port()),
                                     "--ca_cert",
                                     clavisd_.ca_cert_file(),
                                     "--cert",
                                     prefix + ".crt",
                                     "--key",
                                     prefix + ".key",
                                     "--tenant",
                                     "acme"};
    // Quiet unless the test asks for a level of its own.
    if (std::find(extra.begin(), extra.end(), "--log_level") == extra.end()) {
      args.insert(args.end(), {"--log_level", "warn"});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::string RotatorCommand(const std::vector<std::string>& extra) {
    std::string out;
    for (const std::string& a : RotatorArgs(extra)) absl::StrAppend(&out, "'", a, "' ");
    return out;
  }
  // A rotator daemon in the background.
  pid_t StartDaemon(const std::vector<std::string>& extra) {
    std::vector<std::string> args = RotatorArgs(extra);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("GRPC_DNS_RESOLVER", "native", 1);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    daemons_.push_back(pid);
    return pid;
  }
  int Stop(pid_t pid, int signal) {
    ::kill(pid, signal);
    int status = 0;
    ::waitpid(pid, &status, 0);
    daemons_.erase(std::remove(daemons_.begin(), daemons_.end(), pid), daemons_.end());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  void CreateKey(const std::string& id, absl::Time next_rotation) {
    clavis::v1::CreateKeyRequest request;
    request.set_parent("tenants/acme");
    request.set_key_id(id);
    request.mutable_rotation_period()->set_seconds(24 * 3600);
    *request.mutable_next_rotation_time() = At(next_rotation);
    request.add_key_users(app_);
    clavis::v1::Key key;
    grpc::Status s = clavisd_.Admin()->CreateKey(ContextWithDeadline().get(), request, &key);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // `plaintext` encrypted under `key`'s `segment` by the key user; "" on
  // failure (and the test fails).
  std::string Seal(const std::string& key, const std::string& segment,
                   const std::string& plaintext) {
    clavis::v1::EncryptRequest request;
    request.set_key(key);
    request.set_segment(segment);
    request.set_plaintext(plaintext);
    clavis::v1::EncryptResponse sealed;
    grpc::Status s = clavisd_.Data(app_)->Encrypt(ContextWithDeadline().get(), request, &sealed);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return sealed.ciphertext_blob();
  }
  // Decrypt as the key user; the plaintext in `out`.
  grpc::Status Open(const std::string& blob, std::string* out) {
    clavis::v1::DecryptRequest request;
    request.set_ciphertext_blob(blob);
    clavis::v1::DecryptResponse opened;
    grpc::Status s = clavisd_.Data(app_)->Decrypt(ContextWithDeadline().get(), request, &opened);
    *out = opened.plaintext();
    return s;
  }
  void FillSegments(const std::string& key, int count) {
    for (int i = 0; i < count; ++i) ASSERT_FALSE(Seal(key, absl::StrCat("s", i), "x").empty());
  }
  clavis::v1::Key GetKey(const std::string& name) {
    clavis::v1::GetKeyRequest request;
    request.set_name(name);
    clavis::v1::Key key;
    EXPECT_TRUE(clavisd_.Admin()->GetKey(ContextWithDeadline().get(), request, &key).ok());
    return key;
  }
  // Segments of `key` (all pages) whose every version is wrapped under
  // `version`, and the total.
  std::pair<int, int> SegmentsOn(const std::string& key, uint32_t version) {
    clavis::v1::ListSegmentsRequest request;
    request.set_parent(key);
    request.set_page_size(1000);
    int on = 0, total = 0;
    while (true) {
      clavis::v1::ListSegmentsResponse page;
      EXPECT_TRUE(clavisd_.Admin()->ListSegments(ContextWithDeadline().get(), request, &page).ok());
      for (const auto& s : page.segments()) {
        ++total;
        bool all = true;
        for (const auto& v : s.versions()) all = all && v.wrapped_under_key_version() == version;
        on += all ? 1 : 0;
      }
      if (page.next_page_token().empty()) break;
      request.set_page_token(page.next_page_token());
    }
    return {on, total};
  }
  template <typename Predicate>
  bool WaitFor(Predicate done, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time give_up = absl::Now() + timeout;
    while (absl::Now() < give_up) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return done();
  }

  TempDir dir_;
  ClavisdProcess clavisd_{ClavisdOptions(dir_.path() + "/data")};
  const std::string app_ = PrincipalName("acme", "app");
  std::vector<pid_t> daemons_;
};

TEST_F(RotatorTest, RacingRotatorsRotateADueKeyExactlyOnceAndRewrapEverySegment) {
  const std::string key = "tenants/acme/keys/crm";
  CreateKey("crm", absl::Now() + absl::Seconds(1));
  FillSegments(key, 30);
  // Not due yet: a pass changes nothing.
  ASSERT_EQ(RunShell(RotatorCommand({"--once"})).exit_code, 0);
  EXPECT_EQ(GetKey(key).primary_version(), 1u);
  absl::SleepFor(absl::Seconds(1.2));
  // Three rotators at once, each one pass.
  const std::string once = RotatorCommand({"--once", "--rewrap_batch_size", "4"});
  CommandResult raced = RunShell(absl::StrCat("export GRPC_DNS_RESOLVER=native; (", once, " & ",
                                              once, " & ", once, " & wait) 2>&1"));
  EXPECT_EQ(raced.exit_code, 0) << raced.out;
  const clavis::v1::Key rotated = GetKey(key);
  EXPECT_EQ(rotated.primary_version(), 2u);
  EXPECT_EQ(rotated.versions_size(), 2) << "one rotation per due time";
  // The next one is a rotation period later.
  EXPECT_GT(rotated.next_rotation_time().seconds(),
            absl::ToUnixSeconds(absl::Now() + absl::Hours(23)));
  auto [on, total] = SegmentsOn(key, 2);
  EXPECT_EQ(total, 30);
  EXPECT_EQ(on, 30) << "every segment key re-wrapped onto the new version";
  // Version 1 now protects nothing; version 2 everything.
  clavis::v1::KeyNameRequest usage_request;
  usage_request.set_name(key);
  clavis::v1::KeyVersionUsage usage;
  ASSERT_TRUE(clavisd_.Admin()
                  ->GetKeyVersionUsage(ContextWithDeadline().get(), usage_request, &usage)
                  .ok());
  EXPECT_EQ(usage.segments_scanned(), 30u);
  ASSERT_EQ(usage.versions_size(), 2);
  EXPECT_EQ(usage.versions(0).segments(), 0u);
  EXPECT_EQ(usage.versions(1).segments(), 30u);
  EXPECT_TRUE(usage.versions(1).primary());
  // Another tenant's admin may not look.
  grpc::Status refused =
      clavisd_.Admin(PrincipalName("globex"))
          ->GetKeyVersionUsage(ContextWithDeadline().get(), usage_request, &usage);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(RotatorTest, AKilledRotatorLeavesNothingBehindOnceRestarted) {
  const std::string key = "tenants/acme/keys/crm";
  CreateKey("crm", absl::Now() + absl::Seconds(1));
  FillSegments(key, 400);
  absl::SleepFor(absl::Seconds(1.2));
  const pid_t first =
      StartDaemon({"--interval_s", "3600", "--rewrap_batch_size", "1", "--metrics_listen", ""});
  // Kill it (no clean-up at all) in the middle of the re-wrap.
  ASSERT_TRUE(WaitFor([&] { return SegmentsOn(key, 2).first > 0; }));
  EXPECT_EQ(Stop(first, SIGKILL), 128 + SIGKILL);
  const auto [on_at_kill, total] = SegmentsOn(key, 2);
  EXPECT_LT(on_at_kill, total) << "killed after the re-wrap was done; the test proves nothing";
  // A new rotator's first pass finishes the job; nothing is lost.
  ASSERT_EQ(RunShell(RotatorCommand({"--once"})).exit_code, 0);
  EXPECT_EQ(SegmentsOn(key, 2), std::make_pair(400, 400));
  EXPECT_EQ(GetKey(key).versions_size(), 2);
  std::string opened;
  ASSERT_TRUE(Open(Seal(key, "s7", "still works"), &opened).ok());
  EXPECT_EQ(opened, "still works");
}

TEST_F(RotatorTest, DestructionsHappenWhenTheirWindowEnds) {
  const std::string key = "tenants/acme/keys/old";
  CreateKey("old", absl::Now() + absl::Hours(24));
  clavis::v1::ScheduleDestructionRequest schedule;
  schedule.set_name(key);
  schedule.mutable_pending_window()->set_seconds(2);
  clavis::v1::Key scheduled;
  ASSERT_TRUE(clavisd_.Admin()
                  ->ScheduleKeyDestruction(ContextWithDeadline().get(), schedule, &scheduled)
                  .ok());
  ASSERT_EQ(RunShell(RotatorCommand({"--once"})).exit_code, 0);
  EXPECT_EQ(GetKey(key).state(), clavis::v1::PENDING_DESTRUCTION) << "not before its time";
  absl::SleepFor(absl::Seconds(2.2));
  ASSERT_EQ(RunShell(RotatorCommand({"--once"})).exit_code, 0);
  EXPECT_EQ(GetKey(key).state(), clavis::v1::DESTROYED);
}

TEST_F(RotatorTest, ImportedMaterialExpiresAtItsValidTo) {
  clavis::v1::CreateKeyRequest create;
  create.set_parent("tenants/acme");
  create.set_key_id("byok");
  create.set_origin(clavis::v1::EXTERNAL);
  clavis::v1::Key key;
  ASSERT_TRUE(clavisd_.Admin()->CreateKey(ContextWithDeadline().get(), create, &key).ok());
  clavis::v1::GetImportParametersRequest get;
  get.set_name(key.name());
  get.set_wrapping_algorithm(clavis::v1::RSAES_OAEP_SHA_256);
  clavis::v1::ImportParameters params;
  ASSERT_TRUE(clavisd_.Admin()
                  ->GetImportParameters(ContextWithDeadline(absl::Seconds(60)).get(), get, &params)
                  .ok());
  clavis::v1::ImportKeyMaterialRequest import;
  import.set_name(key.name());
  import.set_import_token(params.import_token());
  import.set_wrapping_algorithm(clavis::v1::RSAES_OAEP_SHA_256);
  import.set_wrapped_key_material(
      *crypto::RsaOaepEncrypt(params.public_key_pem(), crypto::RandomSecret(32)));
  *import.mutable_valid_to() = At(absl::Now() + absl::Seconds(2));
  ASSERT_TRUE(clavisd_.Admin()->ImportKeyMaterial(ContextWithDeadline().get(), import, &key).ok());
  const int port = UnusedLoopbackPort();
  const pid_t daemon =
      StartDaemon({"--interval_s", "0.2", "--metrics_listen", absl::StrCat("127.0.0.1:", port)});
  ASSERT_TRUE(WaitFor([&] {
    return FetchMetrics(port).find("clavis_rotator_materials_expired_total 1") != std::string::npos;
  })) << FetchMetrics(port);
  // ListKeys alone (no other call touched the key) shows it expired now.
  clavis::v1::ListKeysRequest list;
  list.set_parent("tenants/acme");
  clavis::v1::ListKeysResponse keys;
  ASSERT_TRUE(clavisd_.Admin()->ListKeys(ContextWithDeadline().get(), list, &keys).ok());
  ASSERT_EQ(keys.keys_size(), 1);
  EXPECT_EQ(keys.keys(0).state(), clavis::v1::PENDING_IMPORT);
  const std::string metrics = FetchMetrics(port);
  EXPECT_THAT(metrics, HasSubstr("# TYPE clavis_rotator_passes_total counter"));
  EXPECT_THAT(metrics, HasSubstr("clavis_rotator_errors_total 0"));
  EXPECT_EQ(Stop(daemon, SIGTERM), 0) << "SIGTERM is a clean exit";
}

TEST_F(RotatorTest, ACompromisedVersionIsRewrappedAwayAuditedAndDisabled) {
  const std::string key = "tenants/acme/keys/crm";
  CreateKey("crm", absl::Now() + absl::Hours(24));
  const std::string blob = Seal(key, "customers/42", "alice@example.com");
  FillSegments(key, 20);
  const int port = UnusedLoopbackPort();
  // No full scan after the first pass: what follows is the rotator reacting
  // to the compromise itself.
  const pid_t daemon =
      StartDaemon({"--interval_s", "0.2", "--full_scan_s", "3600", "--retire_grace_s", "0",
                   "--metrics_listen", absl::StrCat("127.0.0.1:", port)});
  ASSERT_TRUE(WaitFor([&] {
    return FetchMetrics(port).find("clavis_rotator_passes_total 0") == std::string::npos &&
           !FetchMetrics(port).empty();
  }));

  // Hold the rotator still while the refusal is checked.
  ASSERT_EQ(::kill(daemon, SIGSTOP), 0);
  // The primary (and only) version leaks: mark it; clavisd rotates first.
  clavis::v1::KeyVersionRequest mark;
  mark.set_name(key + "/versions/1");
  clavis::v1::Key marked;
  grpc::Status s =
      clavisd_.Admin()->MarkKeyVersionCompromised(ContextWithDeadline().get(), mark, &marked);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(marked.primary_version(), 2u);
  // A data user gets a clear refusal until the rotator has moved the keys.
  std::string opened;
  grpc::Status refused = Open(blob, &opened);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("marked compromised"));
  ASSERT_EQ(::kill(daemon, SIGCONT), 0);
  // The rotator re-wraps every segment key off v1 on its next pass, and
  // then disables v1 (a compromised version is always retired).
  ASSERT_TRUE(WaitFor([&] { return SegmentsOn(key, 2) == std::make_pair(21, 21); }));
  ASSERT_TRUE(WaitFor([&] { return GetKey(key).versions(0).state() == clavis::v1::DISABLED; }))
      << FetchMetrics(port);
  ASSERT_TRUE(Open(blob, &opened).ok());
  EXPECT_EQ(opened, "alice@example.com");
  const std::string metrics = FetchMetrics(port);
  EXPECT_THAT(metrics, HasSubstr("clavis_rotator_compromised_rewrapped_total 21"));
  EXPECT_THAT(metrics, HasSubstr("clavis_rotator_segments_rotated_total 21"));
  EXPECT_THAT(metrics, HasSubstr("clavis_rotator_versions_disabled_total 1"));
  EXPECT_EQ(Stop(daemon, SIGTERM), 0);

  // Every use of the compromised material is in the audit log, by segment.
  CommandResult audit =
      RunShell(absl::StrCat(CLAVISCTL_BINARY, " audit export --dir ", dir_.path(),
                            "/data/audit --action UnwrapUnderCompromisedVersion --key ", key));
  ASSERT_EQ(audit.exit_code, 0) << audit.out;
  const std::vector<std::string> lines = absl::StrSplit(audit.out, '\n', absl::SkipWhitespace());
  EXPECT_EQ(lines.size(), 21u) << audit.out;
  EXPECT_THAT(audit.out, HasSubstr("customers/42"));
}

TEST_F(RotatorTest, UnusedVersionsAreRetiredPerTheKeysSetting) {
  for (const char* id : {"keep", "destroy"}) CreateKey(id, absl::Now() + absl::Hours(24));
  clavis::v1::UpdateKeySettingsRequest settings;
  settings.set_name("tenants/acme/keys/destroy");
  settings.mutable_update_mask()->add_paths("version_retirement");
  settings.set_version_retirement(clavis::v1::DESTROY_UNUSED_VERSIONS);
  clavis::v1::Key updated;
  ASSERT_TRUE(
      clavisd_.Admin()->UpdateKeySettings(ContextWithDeadline().get(), settings, &updated).ok());
  for (const char* id : {"keep", "destroy"}) {
    const std::string key = absl::StrCat("tenants/acme/keys/", id);
    FillSegments(key, 5);
    clavis::v1::RotateKeyRequest rotate;
    rotate.set_name(key);
    clavis::v1::Key rotated;
    ASSERT_TRUE(clavisd_.Admin()->RotateKey(ContextWithDeadline().get(), rotate, &rotated).ok());
  }
  // Within the grace period nothing is retired, though the re-wrap is done.
  ASSERT_EQ(RunShell(RotatorCommand({"--once", "--retire_grace_s", "3600"})).exit_code, 0);
  EXPECT_EQ(SegmentsOn("tenants/acme/keys/destroy", 2), std::make_pair(5, 5));
  EXPECT_EQ(GetKey("tenants/acme/keys/destroy").versions(0).state(), clavis::v1::ENABLED);
  ASSERT_EQ(RunShell(RotatorCommand({"--once", "--retire_grace_s", "0"})).exit_code, 0);
  EXPECT_EQ(GetKey("tenants/acme/keys/keep").versions(0).state(), clavis::v1::ENABLED)
      << "the default keeps unused versions";
  const clavis::v1::Key destroyed = GetKey("tenants/acme/keys/destroy");
  EXPECT_EQ(destroyed.versions(0).state(), clavis::v1::PENDING_DESTRUCTION);
  EXPECT_GT(TimeUtil::TimestampToSeconds(destroyed.versions(0).destroy_time()),
            absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 29)))
      << "the default pending window (30 days), cancellable until then";
  EXPECT_EQ(destroyed.versions(1).state(), clavis::v1::ENABLED);
  // clavisctl key get shows where the segment keys are.
  CommandResult shown = RunShell(absl::StrCat(
      CLAVISCTL_BINARY, " --endpoint localhost:", clavisd_.port(), " --ca-cert ",
      clavisd_.ca_cert_file(), " --cert ", clavisd_.client_cert_prefix(PrincipalName("acme")),
      ".crt --key ", clavisd_.client_cert_prefix(PrincipalName("acme")),
      ".key key get tenants/acme/keys/destroy"));
  ASSERT_EQ(shown.exit_code, 0) << shown.out;
  EXPECT_THAT(shown.out, HasSubstr("SEGMENT KEYS"));
  EXPECT_THAT(shown.out, HasSubstr("re-wrap: 5 of 5 segment keys on the primary version (100%)"));
  EXPECT_THAT(shown.out, HasSubstr("disable, then schedule destruction"));
}

TEST_F(RotatorTest, SegmentKeysRotateOnTheirOwnPeriodOncePerDueTime) {
  const std::string key = "tenants/acme/keys/crm";
  CreateKey("crm", absl::Now() + absl::Hours(24));
  clavis::v1::UpdateKeySettingsRequest settings;
  settings.set_name(key);
  settings.mutable_update_mask()->add_paths("segment_rotation_period");
  settings.mutable_segment_rotation_period()->set_seconds(3);
  clavis::v1::Key updated;
  ASSERT_TRUE(
      clavisd_.Admin()->UpdateKeySettings(ContextWithDeadline().get(), settings, &updated).ok());
  FillSegments(key, 10);
  ASSERT_EQ(RunShell(RotatorCommand({"--once"})).exit_code, 0);
  auto primaries = [&] {
    clavis::v1::ListSegmentsRequest request;
    request.set_parent(key);
    clavis::v1::ListSegmentsResponse page;
    EXPECT_TRUE(clavisd_.Admin()->ListSegments(ContextWithDeadline().get(), request, &page).ok());
    std::vector<uint32_t> out;
    for (const auto& segment : page.segments()) out.push_back(segment.primary_version());
    return out;
  };
  EXPECT_THAT(primaries(), ::testing::Each(1u)) << "not due yet";
  absl::SleepFor(absl::Seconds(3.2));
  // Two rotators at once: each due segment is rotated exactly once.
  std::thread other([&] { EXPECT_EQ(RunShell(RotatorCommand({"--once"})).exit_code, 0); });
  EXPECT_EQ(RunShell(RotatorCommand({"--once"})).exit_code, 0);
  other.join();
  EXPECT_THAT(primaries(), ::testing::Each(2u));
}

TEST_F(RotatorTest, JsonLogsAreOneParsableObjectPerLine) {
  CreateKey("json", absl::Now() + absl::Milliseconds(200));
  absl::SleepFor(absl::Milliseconds(300));
  CommandResult run =
      RunShell(RotatorCommand({"--once", "--log_level", "info", "--log_format", "json"}) + " 2>&1");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  int rotated = 0, lines = 0;
  for (absl::string_view line : absl::StrSplit(run.out, '\n', absl::SkipEmpty())) {
    ++lines;
    auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(record.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(record.contains("time") && record.contains("level") && record.contains("msg"))
        << line;
    if (absl::StrContains(record.value("msg", ""), "rotated tenants/acme/keys/json")) ++rotated;
  }
  EXPECT_GT(lines, 0);
  EXPECT_EQ(rotated, 1) << run.out;
  EXPECT_EQ(RunShell(RotatorCommand({"--once", "--log_format", "xml"}) + " 2>&1").exit_code, 2);
}

TEST_F(RotatorTest, WrongUsageAndAPrincipalWithoutRightsAreRefused) {
  EXPECT_EQ(RunShell(absl::StrCat(CLAVIS_ROTATOR_BINARY, " --once 2>&1")).exit_code, 2)
      << "--tenant is required";
  // Another tenant's admin may not list acme's keys: the pass fails, exit 1.
  const std::string prefix = clavisd_.client_cert_prefix(PrincipalName("globex"));
  CommandResult refused =
      RunShell(absl::StrCat(CLAVIS_ROTATOR_BINARY, " --endpoint localhost:", clavisd_.port(),
                            " --ca_cert ", clavisd_.ca_cert_file(), " --cert ", prefix,
                            ".crt --key ", prefix, ".key --tenant acme --once 2>&1"));
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("listing the keys of tenants/acme"));
}

}  // namespace
}  // namespace clavis::testing
