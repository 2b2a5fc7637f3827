// Rendezvous: the in-memory store, the blob all-gather, the standalone TCP store against
// well-behaved and hostile peers, and the torchrun-style environment.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <random>
#include <thread>

#include "runtime/channel/launch_env.h"
#include "runtime/channel/rendezvous.h"
#include "runtime/channel/tcp_rendezvous.h"
#include "runtime/channel/tcp_rendezvous_wire.h"

namespace distri::channel {
namespace {

using std::chrono::milliseconds;

TEST(MemoryRendezvous, PutGetWaitAndErrors) {
  MemoryRendezvous rv;
  ASSERT_TRUE(rv.Put("a/0", "x").ok());
  EXPECT_EQ("x", rv.Get("a/0", milliseconds(0)).value());
  EXPECT_EQ(StatusCode::kAlreadyExists, rv.Put("a/0", "y").code());
  const auto missing = rv.Get("a/1", milliseconds(20));
  EXPECT_EQ(StatusCode::kDeadlineExceeded, missing.status().code());
  EXPECT_NE(std::string::npos, missing.status().message().find("'a/1'"));
  std::thread late([&] {
    std::this_thread::sleep_for(milliseconds(30));
    EXPECT_TRUE(rv.Put("a/2", std::string(1000, 'z')).ok());
  });
  EXPECT_EQ(1000u, rv.Get("a/2", milliseconds(5000)).value().size());
  late.join();
  EXPECT_EQ(StatusCode::kInvalidArgument, rv.Put("", "v").code());
  EXPECT_EQ(StatusCode::kInvalidArgument, rv.Put("has space", "v").code());
  EXPECT_EQ(StatusCode::kInvalidArgument, rv.Put(std::string(513, 'k'), "v").code());
  const Status big = rv.Put("big", std::string(kMaxRendezvousValueBytes + 1, 'v'));
  EXPECT_EQ(StatusCode::kInvalidArgument, big.code());
  EXPECT_NE(std::string::npos, big.message().find("limit of 1048576")) << big.message();
  EXPECT_TRUE(rv.Put("max", std::string(kMaxRendezvousValueBytes, 'v')).ok());
}

TEST(RendezvousAllGather, EveryRankGetsEveryBlob) {
  MemoryRendezvous rv;
  std::vector<std::vector<std::string>> got(4);
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&, r] {
      auto blobs = RendezvousAllGather(rv, "g", r, 4, "blob" + std::to_string(r), milliseconds(5000));
      ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
      got[static_cast<size_t>(r)] = *blobs;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& blobs : got) EXPECT_EQ((std::vector<std::string>{"blob0", "blob1", "blob2", "blob3"}), blobs);
  const auto lonely = RendezvousAllGather(rv, "h", 0, 2, "b", milliseconds(20));
  EXPECT_EQ(StatusCode::kDeadlineExceeded, lonely.status().code());
  EXPECT_NE(std::string::npos, lonely.status().message().find("waiting for rank 1 of 2")) << lonely.status().message();
}

// ---- TCP

struct Server {
  std::unique_ptr<TcpRendezvousServer> server;
  explicit Server(TcpRendezvousServerOptions options = {}) {
    auto s = TcpRendezvousServer::Listen("127.0.0.1", 0, options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server = std::move(s).value();
    EXPECT_TRUE(server->Start().ok());
  }
  std::unique_ptr<TcpRendezvousClient> Client() {
    auto c = TcpRendezvousClient::Connect("127.0.0.1", server->port(), milliseconds(5000));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
};

Fd RawConnect(uint16_t port) {
  auto fd = ConnectTcp("127.0.0.1", port, DeadlineAfter(milliseconds(5000)));
  EXPECT_TRUE(fd.ok());
  return std::move(fd).value();
}

// Reads one response header + payload from a raw socket (or returns code 255 on EOF/timeout).
std::pair<int, std::string> RawReply(int fd) {
  char h[tcp_wire::kResponseHeaderBytes];
  if (!RecvAll(fd, h, sizeof(h), DeadlineAfter(milliseconds(5000))).ok()) return {255, ""};
  std::string payload(tcp_wire::GetU32(h + 8), '\0');
  if (!RecvAll(fd, payload.data(), payload.size(), DeadlineAfter(milliseconds(5000))).ok()) return {255, ""};
  return {static_cast<uint8_t>(h[4]), payload};
}

bool ClosedByPeer(int fd, int timeout_ms = 5000) {
  char c;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  return ::recv(fd, &c, 1, 0) == 0;
}

TEST(TcpRendezvous, PutGetAcrossClients) {
  Server s;
  auto a = s.Client();
  auto b = s.Client();
  ASSERT_TRUE(a->Put("k", "v1").ok());
  EXPECT_EQ("v1", b->Get("k", milliseconds(1000)).value());
  EXPECT_EQ(StatusCode::kAlreadyExists, b->Put("k", "v2").code());
  // A GET parks on the server until another client puts the key.
  std::thread late([&] {
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_TRUE(a->Put("later", std::string(kMaxRendezvousValueBytes, 'q')).ok());
  });
  const auto got = b->Get("later", milliseconds(5000));
  late.join();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(kMaxRendezvousValueBytes, got->size());
  const auto missing = b->Get("never", milliseconds(50));
  EXPECT_EQ(StatusCode::kDeadlineExceeded, missing.status().code());
  EXPECT_NE(std::string::npos, missing.status().message().find("'never'"));
  EXPECT_EQ("v1", b->Get("k", milliseconds(0)).value()) << "the client is still usable";
  // Client-side checks never reach the server.
  EXPECT_EQ(StatusCode::kInvalidArgument, a->Put("bad key", "v").code());
  EXPECT_EQ(StatusCode::kInvalidArgument, a->Put("k2", std::string(kMaxRendezvousValueBytes + 1, 'v')).code());
  EXPECT_EQ(0u, s.server->malformed_frames());
}

// The head frees a released gang's keys: the bytes count again, other gangs' keys stay.
TEST(TcpRendezvous, ErasePrefixFreesTheKeysAndTheirBytes) {
  TcpRendezvousServerOptions o;
  o.max_store_bytes = 80;  // bytes = key + value: 29 + 26 + 13 fit, 28 more do not
  Server s(o);
  auto c = s.Client();
  ASSERT_TRUE(c->Put("gang/aa/0", std::string(20, 'x')).ok());
  ASSERT_TRUE(c->Put("gang/aa/group0/0", std::string(10, 'y')).ok());
  ASSERT_TRUE(c->Put("gang/ab/0", "keep").ok());
  EXPECT_EQ(StatusCode::kOutOfMemory, c->Put("gang/b/0", std::string(20, 'z')).code()) << "the store is full";
  s.server->ErasePrefix("gang/aa/");
  // Takes effect at the server's next turn: wait until the bytes are back.
  Status put = Status::Internal("not tried");
  for (int i = 0; i < 200 && !put.ok(); ++i) {
    put = c->Put("gang/b/0", std::string(20, 'z'));
    if (!put.ok()) std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_EQ(2u, s.server->erased_keys());
  EXPECT_EQ(StatusCode::kDeadlineExceeded, c->Get("gang/aa/0", milliseconds(20)).status().code());
  EXPECT_EQ(StatusCode::kDeadlineExceeded, c->Get("gang/aa/group0/0", milliseconds(20)).status().code());
  EXPECT_EQ("keep", c->Get("gang/ab/0", milliseconds(1000)).value()) << "another gang's key is kept";
  s.server->ErasePrefix("nothing/");  // no key: a no-op
  EXPECT_EQ("keep", c->Get("gang/ab/0", milliseconds(1000)).value());
  EXPECT_EQ(2u, s.server->erased_keys());
}

TEST(TcpRendezvous, ServerRejectsMalformedFramesAndKeepsServing) {
  Server s;
  auto good = s.Client();
  {
    Fd fd = RawConnect(s.server->port());
    const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_TRUE(SendAll(fd.get(), junk.data(), junk.size(), DeadlineAfter(milliseconds(1000))).ok());
    const auto [code, message] = RawReply(fd.get());
    EXPECT_EQ(static_cast<int>(StatusCode::kParseError), code);
    EXPECT_NE(std::string::npos, message.find("bad magic")) << message;
    EXPECT_TRUE(ClosedByPeer(fd.get()));
  }
  {
    // A header announcing a 4 GiB value: refused before anything is allocated.
    std::string frame = tcp_wire::EncodeRequest(tcp_wire::kOpPut, "k", "");
    tcp_wire::PutU32(frame.data() + 12, 0xFFFFFFFFu);
    Fd fd = RawConnect(s.server->port());
    ASSERT_TRUE(SendAll(fd.get(), frame.data(), frame.size(), DeadlineAfter(milliseconds(1000))).ok());
    const auto [code, message] = RawReply(fd.get());
    EXPECT_EQ(static_cast<int>(StatusCode::kInvalidArgument), code);
    EXPECT_NE(std::string::npos, message.find("over the limit")) << message;
  }
  {
    std::string frame = tcp_wire::EncodeRequest(7, "k", "");
    Fd fd = RawConnect(s.server->port());
    ASSERT_TRUE(SendAll(fd.get(), frame.data(), frame.size(), DeadlineAfter(milliseconds(1000))).ok());
    EXPECT_NE(std::string::npos, RawReply(fd.get()).second.find("unknown op 7"));
  }
  {
    // A well-formed frame with a bad key gets an error but keeps its connection.
    std::string frame = tcp_wire::EncodeRequest(tcp_wire::kOpPut, "bad\nkey", "v");
    Fd fd = RawConnect(s.server->port());
    ASSERT_TRUE(SendAll(fd.get(), frame.data(), frame.size(), DeadlineAfter(milliseconds(1000))).ok());
    EXPECT_EQ(static_cast<int>(StatusCode::kInvalidArgument), RawReply(fd.get()).first);
    frame = tcp_wire::EncodeRequest(tcp_wire::kOpPut, "fine", "v");
    ASSERT_TRUE(SendAll(fd.get(), frame.data(), frame.size(), DeadlineAfter(milliseconds(1000))).ok());
    EXPECT_EQ(0, RawReply(fd.get()).first);
  }
  // Random bytes: never a crash or a hang.
  std::mt19937 gen(7);
  for (int i = 0; i < 50; ++i) {
    std::string junk(1 + gen() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(gen());
    if (i % 2 == 0) tcp_wire::PutU32(junk.data(), tcp_wire::kMagic);  // get past the magic
    Fd fd = RawConnect(s.server->port());
    (void)SendAll(fd.get(), junk.data(), junk.size(), DeadlineAfter(milliseconds(1000)));
  }
  ASSERT_TRUE(good->Put("after", "ok").ok());
  EXPECT_EQ("ok", good->Get("after", milliseconds(1000)).value());
  EXPECT_GE(s.server->malformed_frames(), 3u);
}

TEST(TcpRendezvous, ServerDropsStalledAndExcessConnections) {
  TcpRendezvousServerOptions options;
  options.frame_timeout = milliseconds(100);
  options.max_connections = 4;
  Server s(options);
  Fd stalled = RawConnect(s.server->port());
  const std::string half = tcp_wire::EncodeRequest(tcp_wire::kOpPut, "k", "value").substr(0, 10);
  ASSERT_TRUE(SendAll(stalled.get(), half.data(), half.size(), DeadlineAfter(milliseconds(1000))).ok());
  EXPECT_TRUE(ClosedByPeer(stalled.get())) << "a half-sent frame must not hold a connection";
  std::vector<Fd> flood;
  for (int i = 0; i < 6; ++i) flood.push_back(RawConnect(s.server->port()));
  int closed = 0;
  for (Fd& fd : flood) closed += ClosedByPeer(fd.get(), 300) ? 1 : 0;
  EXPECT_GE(closed, 2);
  flood.clear();
  std::this_thread::sleep_for(milliseconds(100));
  auto c = s.Client();
  EXPECT_TRUE(c->Put("x", "y").ok());
  EXPECT_GE(s.server->dropped_connections(), 3u);
}

// A fake server that accepts one connection and answers with `reply` (or nothing).
class FakeServer {
 public:
  explicit FakeServer(std::string reply, bool close_after = false) {
    auto fd = ListenTcp("127.0.0.1", 0, &port_);
    EXPECT_TRUE(fd.ok());
    listen_ = std::move(fd).value();
    thread_ = std::thread([this, reply, close_after] {
      pollfd p{listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return;
      Fd conn(::accept(listen_.get(), nullptr, nullptr));
      char buf[4096];
      pollfd q{conn.get(), POLLIN, 0};
      if (::poll(&q, 1, 5000) > 0) (void)::recv(conn.get(), buf, sizeof(buf), 0);
      if (!reply.empty()) (void)SendAll(conn.get(), reply.data(), reply.size(), DeadlineAfter(milliseconds(1000)));
      if (close_after) return;
      pollfd r{conn.get(), POLLIN, 0};
      ::poll(&r, 1, 2000);  // hold the connection open until the client gives up
    });
  }
  ~FakeServer() { thread_.join(); }
  uint16_t port() const { return port_; }

 private:
  uint16_t port_ = 0;
  Fd listen_;
  std::thread thread_;
};

TEST(TcpRendezvous, ClientSurvivesHostileServers) {
  {
    FakeServer fake("HTTP/1.1 200 OK\r\n\r\n");
    auto c = TcpRendezvousClient::Connect("127.0.0.1", fake.port(), milliseconds(1000));
    ASSERT_TRUE(c.ok());
    const Status s = (*c)->Put("k", "v");
    EXPECT_EQ(StatusCode::kParseError, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("bad magic")) << s.message();
  }
  {
    std::string reply = tcp_wire::EncodeResponse(0, "");
    tcp_wire::PutU32(reply.data() + 8, 0x7FFFFFFFu);  // a 2 GiB payload, never allocated
    FakeServer fake(reply);
    auto c = TcpRendezvousClient::Connect("127.0.0.1", fake.port(), milliseconds(1000));
    ASSERT_TRUE(c.ok());
    const auto r = (*c)->Get("k", milliseconds(10));
    EXPECT_EQ(StatusCode::kParseError, r.status().code()) << r.status().ToString();
    EXPECT_NE(std::string::npos, r.status().message().find("over the limit")) << r.status().message();
  }
  {
    std::string reply = tcp_wire::EncodeResponse(200, "");
    FakeServer fake(reply);
    auto c = TcpRendezvousClient::Connect("127.0.0.1", fake.port(), milliseconds(1000));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(StatusCode::kParseError, (*c)->Put("k", "v").code());
  }
  {
    FakeServer fake("");  // accepts, reads, never answers
    auto c = TcpRendezvousClient::Connect("127.0.0.1", fake.port(), milliseconds(1000));
    ASSERT_TRUE(c.ok());
    (*c)->set_io_timeout(milliseconds(200));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(StatusCode::kDeadlineExceeded, (*c)->Put("k", "v").code());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  }
  {
    FakeServer fake("", /*close_after=*/true);
    auto c = TcpRendezvousClient::Connect("127.0.0.1", fake.port(), milliseconds(1000));
    ASSERT_TRUE(c.ok());
    const Status s = (*c)->Put("k", "v");
    EXPECT_EQ(StatusCode::kUnavailable, s.code()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("rendezvous server 127.0.0.1:")) << s.message();
  }
  {
    uint16_t port = 0;
    { auto fd = ListenTcp("127.0.0.1", 0, &port); }  // a port nobody listens on any more
    const auto c = TcpRendezvousClient::Connect("127.0.0.1", port, milliseconds(200));
    EXPECT_EQ(StatusCode::kUnavailable, c.status().code());
    EXPECT_NE(std::string::npos, c.status().message().find("cannot connect")) << c.status().message();
  }
}

TEST(TcpRendezvous, RankZeroHostsForTheOthers) {
  uint16_t port = 0;
  { auto fd = ListenTcp("127.0.0.1", 0, &port); }
  std::vector<std::vector<std::string>> got(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      auto rv = MakeTcpRendezvous(r, "127.0.0.1", port, milliseconds(5000));
      ASSERT_TRUE(rv.ok()) << rv.status().ToString();
      auto blobs = RendezvousAllGather(**rv, "gang", r, 3, std::string(1, static_cast<char>('a' + r)), milliseconds(5000));
      ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
      got[static_cast<size_t>(r)] = *blobs;
      // Rank 0 hosts the store: keep it until every other rank has read (each says so; one
      // rank's word is not enough: another may still be reading, 2026-11-28 under ctest -j2).
      if (r == 0) {
        EXPECT_TRUE((*rv)->Get("gang/done/1", milliseconds(5000)).ok());
        EXPECT_TRUE((*rv)->Get("gang/done/2", milliseconds(5000)).ok());
      } else {
        EXPECT_TRUE((*rv)->Put("gang/done/" + std::to_string(r), "").ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& blobs : got) EXPECT_EQ((std::vector<std::string>{"a", "b", "c"}), blobs);
  EXPECT_EQ(StatusCode::kInvalidArgument, MakeTcpRendezvous(0, "127.0.0.1", 0, milliseconds(100)).status().code());
}

// ---- environment

Result<LaunchEnv> ReadFrom(std::map<std::string, std::string> vars) {
  return ReadLaunchEnv([vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchEnv, ParsesAndNamesBadVariables) {
  std::map<std::string, std::string> ok = {{"DISTRI_RANK", "2"},
                                           {"DISTRI_WORLD_SIZE", "3"},
                                           {"DISTRI_MASTER_ADDR", "10.0.0.1"},
                                           {"DISTRI_MASTER_PORT", "29500"}};
  const auto env = ReadFrom(ok);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(2, env->rank);
  EXPECT_EQ(3, env->world_size);
  EXPECT_EQ("10.0.0.1", env->master_addr);
  EXPECT_EQ(29500, env->master_port);
  auto with = [&](const std::string& k, const std::string& v) {
    auto m = ok;
    if (v.empty()) m.erase(k); else m[k] = v;
    return ReadFrom(m).status().message();
  };
  EXPECT_EQ("DISTRI_RANK is not set", with("DISTRI_RANK", ""));
  EXPECT_EQ("DISTRI_RANK='two' is not a decimal integer", with("DISTRI_RANK", "two"));
  EXPECT_EQ("DISTRI_RANK='2x' is not a decimal integer", with("DISTRI_RANK", "2x"));
  EXPECT_EQ("DISTRI_RANK=3 must be less than DISTRI_WORLD_SIZE=3", with("DISTRI_RANK", "3"));
  EXPECT_EQ("DISTRI_WORLD_SIZE=0 is outside [1, 4096]", with("DISTRI_WORLD_SIZE", "0"));
  EXPECT_EQ("DISTRI_MASTER_PORT=70000 is outside [1, 65535]", with("DISTRI_MASTER_PORT", "70000"));
  EXPECT_EQ("DISTRI_MASTER_ADDR is not set", with("DISTRI_MASTER_ADDR", ""));
  EXPECT_EQ("DISTRI_RANK=-1 is outside [0, 4096]", with("DISTRI_RANK", "-1"));
}

}  // namespace
}  // namespace distri::channel
