#include <algorithm>

#include "runtime/channel/tcp_rendezvous.h"
#include "runtime/channel/tcp_rendezvous_wire.h"

namespace distri::channel {
namespace {

using namespace tcp_wire;

// Error text from the network: keep printable ASCII only.
std::string Sanitize(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return s;
}

}  // namespace

TcpRendezvousClient::TcpRendezvousClient(std::string host, uint16_t port, Fd fd)
    : host_(std::move(host)), port_(port), fd_(std::move(fd)) {}

Result<std::unique_ptr<TcpRendezvousClient>> TcpRendezvousClient::Connect(
    const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
  auto fd = ConnectTcp(host, port, DeadlineAfter(timeout));
  if (!fd.ok()) return fd.status().WithContext("rendezvous client");
  return std::unique_ptr<TcpRendezvousClient>(
      new TcpRendezvousClient(host, port, std::move(fd).value()));
}

Result<std::string> TcpRendezvousClient::Call(uint8_t op, std::string_view key,
                                              std::string_view value, Clock::time_point deadline) {
  const std::string where = "rendezvous server " + HostPort(host_, port_);
  std::lock_guard<std::mutex> lock(mu_);
  if (!fd_.valid()) {
    auto fd = ConnectTcp(host_, port_, DeadlineAfter(std::min(io_timeout_, TimeLeft(deadline))));
    if (!fd.ok()) return fd.status().WithContext("rendezvous client");
    fd_ = std::move(fd).value();
  }
  // Any failure below leaves the stream in an unknown state: drop the connection.
  auto fail = [&](const Status& s) {
    fd_.Reset();
    return s.WithContext(where);
  };
  const std::string request = EncodeRequest(op, std::string(key), std::string(value));
  if (Status s = SendAll(fd_.get(), request.data(), request.size(), deadline); !s.ok()) {
    return fail(s);
  }
  char header[kResponseHeaderBytes];
  if (Status s = RecvAll(fd_.get(), header, sizeof(header), deadline); !s.ok()) return fail(s);
  const uint32_t magic = GetU32(header);
  const auto code = static_cast<uint8_t>(header[4]);
  const uint32_t len = GetU32(header + 8);
  if (magic != kMagic) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "bad magic 0x%08x in the reply (expected 0x%08x)", magic, kMagic);
    return fail(Status::ParseError(buf));
  }
  if (code > static_cast<uint8_t>(StatusCode::kFailedPrecondition) || header[5] || header[6] ||
      header[7]) {
    return fail(Status::ParseError("malformed reply header (status code " + std::to_string(code) + ")"));
  }
  const size_t limit = code == 0 ? kMaxRendezvousValueBytes : kMaxErrorBytes;
  if (len > limit) {
    return fail(Status::ParseError("reply payload of " + std::to_string(len) +
                                   " bytes is over the limit of " + std::to_string(limit)));
  }
  std::string payload(len, '\0');
  if (Status s = RecvAll(fd_.get(), payload.data(), len, deadline); !s.ok()) return fail(s);
  if (code != 0) return Status(static_cast<StatusCode>(code), Sanitize(std::move(payload)));
  return payload;
}

Status TcpRendezvousClient::Put(std::string_view key, std::string_view value) {
  DISTRI_RETURN_IF_ERROR(CheckRendezvousKey(key));
  DISTRI_RETURN_IF_ERROR(CheckRendezvousValue(key, value.size()));
  auto reply = Call(kOpPut, key, value, DeadlineAfter(io_timeout_));
  if (!reply.ok()) return reply.status();
  if (!reply->empty()) return Status::ParseError("rendezvous PUT: unexpected payload in the reply");
  return Status::Ok();
}

Result<std::string> TcpRendezvousClient::Get(std::string_view key,
                                             std::chrono::milliseconds timeout) {
  DISTRI_RETURN_IF_ERROR(CheckRendezvousKey(key));
  timeout = std::max(timeout, std::chrono::milliseconds(0));
  std::string field(8, '\0');
  PutU64(field.data(), static_cast<uint64_t>(timeout.count()));
  // The server enforces `timeout`; the client allows io_timeout more for the reply to arrive.
  auto deadline = DeadlineAfter(timeout);
  const auto grace = std::chrono::duration_cast<Clock::duration>(io_timeout_);
  deadline = deadline < Clock::time_point::max() - grace ? deadline + grace : Clock::time_point::max();
  auto reply = Call(kOpGet, key, field, deadline);
  if (!reply.ok() && reply.status().code() == StatusCode::kDeadlineExceeded) {
    return Status::DeadlineExceeded("rendezvous key '" + std::string(key) +
                                    "' was not put within " + std::to_string(timeout.count()) +
                                    " ms");
  }
  return reply;
}

namespace {

// Rank 0's rendezvous: the server and a client of it, destroyed client first.
class HostedTcpRendezvous : public Rendezvous {
 public:
  HostedTcpRendezvous(std::unique_ptr<TcpRendezvousServer> server,
                      std::unique_ptr<TcpRendezvousClient> client)
      : server_(std::move(server)), client_(std::move(client)) {}
  ~HostedTcpRendezvous() override { client_.reset(); }
  Status Put(std::string_view key, std::string_view value) override { return client_->Put(key, value); }
  Result<std::string> Get(std::string_view key, std::chrono::milliseconds timeout) override {
    return client_->Get(key, timeout);
  }

 private:
  std::unique_ptr<TcpRendezvousServer> server_;
  std::unique_ptr<TcpRendezvousClient> client_;
};

}  // namespace

Result<std::unique_ptr<Rendezvous>> MakeTcpRendezvous(int rank, const std::string& host,
                                                      uint16_t port,
                                                      std::chrono::milliseconds connect_timeout) {
  if (rank != 0) {
    DISTRI_ASSIGN_OR_RETURN(auto client, TcpRendezvousClient::Connect(host, port, connect_timeout));
    return std::unique_ptr<Rendezvous>(std::move(client));
  }
  if (port == 0) {
    return Status::InvalidArgument("rank 0 must serve the rendezvous on a fixed port (got 0: the "
                                   "other ranks could not know it)");
  }
  DISTRI_ASSIGN_OR_RETURN(auto server, TcpRendezvousServer::Listen(host, port));
  DISTRI_RETURN_IF_ERROR(server->Start());
  DISTRI_ASSIGN_OR_RETURN(auto client, TcpRendezvousClient::Connect(host, port, connect_timeout));
  return std::unique_ptr<Rendezvous>(
      std::make_unique<HostedTcpRendezvous>(std::move(server), std::move(client)));
}

}  // namespace distri::channel
