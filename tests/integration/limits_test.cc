// Limits that keep one slow or abusive client from starving the others
// (docs/clavisd.md, "Limits"), against a real clavisd:
//  - a principal's streams over its limit are refused with RESOURCE_EXHAUSTED
//    naming the limit, while other principals still open theirs, and a
//    closed stream makes room again;
//  - a principal hammering the server with slow batch calls from many
//    threads is held to its share of calls in progress, while another
//    principal's calls all succeed meanwhile;
//  - connections that never finish their handshake are closed by the server
//    and do not hold up anybody else;
//  - a WatchKeyEvents stream ends at its maximum lifetime, and at once (well
//    within seconds) when its service token is revoked.
// Nothing here measures speed: the only time bounds are generous deadlines
// for things that must happen at all.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/clavisd_fixture.h"

namespace clavis::testing {
namespace {

constexpr char kTenant[] = "acme";
const std::string kKey = "tenants/acme/keys/shared";

std::string P(const std::string& id) { return PrincipalName(kTenant, id); }

class LimitsTest : public ::testing::Test {
 protected:
  void StartClavisd(std::vector<std::string> extra_args) {
    ClavisdOptions options(dir_.path() + "/data");
    options.extra_args = std::move(extra_args);
    clavisd_ = std::make_unique<ClavisdProcess>(options);
    absl::Status started = clavisd_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  void CreateSharedKey() {
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/acme");
    create.set_key_id("shared");
    create.set_policy(TestKeyPolicy(kKey, {P("admin"), P("abuser"), P("victim")}));
    clavis::v1::Key key;
    ASSERT_TRUE(
        IsOk(clavisd_->Admin(P("admin"))->CreateKey(ContextWithDeadline().get(), create, &key)));
  }

  // An open WatchKeyEvents stream (or a refused one: see Refusal).
  struct Stream {
    std::unique_ptr<grpc::ClientContext> context = std::make_unique<grpc::ClientContext>();
    std::unique_ptr<grpc::ClientReader<clavis::v1::KeyEvent>> reader;
    bool subscribed = false;
  };

  // Opens a stream as `who` (or with `token` on an anonymous channel) and
  // waits for the server's answer: headers with the subscription marker, or
  // the end of a refused call.
  std::unique_ptr<Stream> Watch(const std::string& who, const std::string& token = "") {
    auto stream = std::make_unique<Stream>();
    // Generous: only there so that a stream the server never ends fails
    // the test instead of hanging it.
    stream->context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(90)));
    std::shared_ptr<grpc::Channel> channel;
    if (token.empty()) {
      channel = clavisd_->NewChannel(who);
    } else {
      channel = clavisd_->AnonymousChannel();
      stream->context->AddMetadata("authorization", "Bearer " + token);
    }
    stubs_.push_back(clavis::v1::KeyManagement::NewStub(channel));
    clavis::v1::WatchKeyEventsRequest request;
    request.set_tenant("tenants/acme");
    stream->reader = stubs_.back()->WatchKeyEvents(stream->context.get(), request);
    stream->reader->WaitForInitialMetadata();
    const auto& headers = stream->context->GetServerInitialMetadata();
    auto it = headers.find("clavis-watch");
    stream->subscribed = it != headers.end() && it->second == "subscribed";
    return stream;
  }

  static grpc::Status Close(Stream& stream) {
    stream.context->TryCancel();
    return stream.reader->Finish();
  }

  static grpc::Status Refusal(Stream& stream) {
    clavis::v1::KeyEvent ignored;
    EXPECT_FALSE(stream.reader->Read(&ignored));
    return stream.reader->Finish();
  }

  grpc::Status Generate(const std::string& who, const std::string& segment) {
    clavis::v1::GenerateDataKeyRequest r;
    r.set_key(kKey);
    r.set_segment(segment);
    clavis::v1::GenerateDataKeyResponse out;
    return clavisd_->Data(who)->GenerateDataKey(ContextWithDeadline().get(), r, &out);
  }

  TempDir dir_;
  std::unique_ptr<ClavisdProcess> clavisd_;
  std::vector<std::unique_ptr<clavis::v1::KeyManagement::Stub>> stubs_;
};

TEST_F(LimitsTest, StreamsOverAPrincipalsLimitAreRefusedOthersStillWatch) {
  StartClavisd({"--max_streams_per_principal=3"});
  std::vector<std::unique_ptr<Stream>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(Watch(P("abuser")));
    ASSERT_TRUE(held.back()->subscribed) << "stream " << i;
  }
  auto fourth = Watch(P("abuser"));
  EXPECT_FALSE(fourth->subscribed);
  EXPECT_TRUE(StatusIs(Refusal(*fourth), grpc::StatusCode::RESOURCE_EXHAUSTED,
                       P("abuser") + " already has 3 streams in progress"));

  // Another principal is not held back, and the abuser's unary calls (a
  // separate budget) still work.
  auto victim = Watch(P("victim"));
  EXPECT_TRUE(victim->subscribed);
  CreateSharedKey();
  EXPECT_TRUE(IsOk(Generate(P("abuser"), "s1")));

  // Closing one makes room again (the server notices the cancel within its
  // polling interval).
  EXPECT_EQ(Close(*held.back()).error_code(), grpc::StatusCode::CANCELLED);
  held.pop_back();
  bool reopened = false;
  for (int i = 0; i < 50 && !reopened; ++i) {
    auto again = Watch(P("abuser"));
    if (again->subscribed) {
      reopened = true;
      held.push_back(std::move(again));
    } else {
      (void)Refusal(*again);
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  EXPECT_TRUE(reopened);
  for (auto& s : held) (void)Close(*s);
  (void)Close(*victim);
}

TEST_F(LimitsTest, AnAbusiveClientIsHeldToItsShareWhileOthersAreServed) {
  // Rate limit out of the way: this is about calls in progress.
  StartClavisd({"--max_calls_per_principal=2", "--rate_limit_rps=1000000"});
  CreateSharedKey();
  std::atomic<bool> stop{false};
  std::atomic<int> abuser_ok{0}, abuser_limited{0}, abuser_other{0};
  std::string other_error;
  std::mutex mu;
  std::vector<std::thread> abusers;
  for (int t = 0; t < 12; ++t) {
    abusers.emplace_back([&, t] {
      // Each thread its own connection, as a botnet of one principal would.
      auto data = clavis::v1::KeyManagement::NewStub(clavisd_->NewChannel(P("abuser")));
      clavis::v1::BatchGenerateDataKeyRequest batch;
      for (int i = 0; i < 200; ++i) {
        auto* r = batch.add_requests();
        r->set_key(kKey);
        r->set_segment(absl::StrCat("abuse-", t % 4));
      }
      while (!stop) {
        clavis::v1::BatchGenerateDataKeyResponse out;
        grpc::Status s = data->BatchGenerateDataKey(ContextWithDeadline().get(), batch, &out);
        if (s.ok()) {
          ++abuser_ok;
        } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                   s.error_message().find("calls in progress") != std::string::npos) {
          ++abuser_limited;
        } else {
          ++abuser_other;
          std::lock_guard<std::mutex> lock(mu);
          other_error = Describe(s);
        }
      }
    });
  }
  // Meanwhile the victim's calls are all served (each within the default
  // 10 s deadline: a starved call would miss it or be refused).
  int victim_ok = 0;
  std::vector<std::string> victim_errors;
  const absl::Time until = absl::Now() + absl::Seconds(4);
  for (int i = 0; absl::Now() < until || abuser_limited.load() == 0; ++i) {
    if (i > 2000) break;
    grpc::Status s = Generate(P("victim"), absl::StrCat("victim-", i % 8));
    if (s.ok()) {
      ++victim_ok;
    } else {
      victim_errors.push_back(Describe(s));
    }
  }
  stop = true;
  for (auto& t : abusers) t.join();
  EXPECT_TRUE(victim_errors.empty())
      << victim_errors.size() << " victim calls failed, first " << victim_errors.front();
  EXPECT_GT(victim_ok, 0);
  EXPECT_GT(abuser_limited.load(), 0) << "12 threads never had more than 2 calls in progress?";
  EXPECT_GT(abuser_ok.load(), 0) << "the abuser keeps its share";
  EXPECT_EQ(abuser_other.load(), 0) << other_error;
  std::cout << "victim: " << victim_ok << " calls served; abuser: " << abuser_ok
            << " batches served, " << abuser_limited << " refused (calls in progress)\n";
}

// A TCP connection to clavisd's port that never says anything.
int ConnectSilently(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST_F(LimitsTest, ConnectionsThatNeverHandshakeAreClosedAndStarveNobody) {
  StartClavisd({});
  CreateSharedKey();
  std::vector<int> silent;
  for (int i = 0; i < 200; ++i) {
    int fd = ConnectSilently(clavisd_->port());
    ASSERT_GE(fd, 0) << "connect " << i;
    silent.push_back(fd);
  }
  // Others are served while those connections sit there.
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(IsOk(Generate(P("victim"), "while-silent")));
  // The server closes each of them once the handshake timeout (10 s by
  // default) has passed: the socket reads end-of-file (or a reset).
  const absl::Time deadline = absl::Now() + absl::Seconds(40);
  size_t closed = 0;
  for (int fd : silent) {
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 500) > 0) {
        char c;
        if (recv(fd, &c, 1, 0) <= 0) {
          ++closed;
          break;
        }
      }
    }
    close(fd);
  }
  EXPECT_EQ(closed, silent.size()) << "connections left open past the handshake timeout";
  EXPECT_TRUE(IsOk(Generate(P("victim"), "after-silent")));
}

TEST_F(LimitsTest, WatchStreamsEndAtTheirLifetimeAndWhenTheirTokenIsRevoked) {
  const std::string revoked = dir_.path() + "/revoked";
  { std::ofstream(revoked) << "# none yet\n"; }
  StartClavisd({"--max_stream_lifetime_s=2", "--token_revocation_file=" + revoked});
  // Lifetime: the server ends the stream cleanly (OK); clients re-open it.
  auto aged = Watch(P("victim"));
  ASSERT_TRUE(aged->subscribed);
  const absl::Time opened = absl::Now();
  clavis::v1::KeyEvent ignored;
  while (aged->reader->Read(&ignored)) {
  }
  EXPECT_TRUE(IsOk(aged->reader->Finish()));
  EXPECT_GE(absl::Now() - opened, absl::Seconds(1.5)) << "ended before its lifetime";

  // Revocation: a stream opened with a token that is then revoked ends with
  // UNAUTHENTICATED, long before its lifetime would end it... so give it a
  // lifetime it cannot reach first.
  ASSERT_TRUE(clavisd_->Stop().ok());
  StartClavisd({"--max_stream_lifetime_s=3600", "--token_revocation_file=" + revoked});
  const std::string token =
      clavisd_->IssueToken(P("app"), absl::Minutes(10), {}, "clavis-test", "watch-leaked");
  auto watched = Watch("", token);
  ASSERT_TRUE(watched->subscribed);
  { std::ofstream(revoked) << "watch-leaked\n"; }
  const absl::Time revoked_at = absl::Now();
  while (watched->reader->Read(&ignored)) {
  }
  EXPECT_TRUE(StatusIs(watched->reader->Finish(), grpc::StatusCode::UNAUTHENTICATED, "revoked"));
  std::cout << "stream ended " << absl::FormatDuration(absl::Now() - revoked_at)
            << " after its token was revoked\n";
  // Checked every 5 s, the revocation list re-read within about a second.
  EXPECT_LT(absl::Now() - revoked_at, absl::Seconds(15));
}

}  // namespace
}  // namespace clavis::testing
