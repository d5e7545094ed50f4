// The ttrpc server and client together on one KJ loop, over socketpairs and
// a real Unix socket: calls in flight at once answered out of order, the
// statuses Go's ttrpc answers with (Unimplemented, InvalidArgument,
// ResourceExhausted, DeadlineExceeded), raw frames a client library would
// never send, back-pressure, shutdown, a peer of another user refused.
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "runtime/shim/ttrpc/client.h"
#include "runtime/shim/ttrpc/frame_stream.h"
#include "runtime/shim/ttrpc/request.pb.h"
#include "runtime/shim/ttrpc/server.h"

namespace skiff::ttrpc {
namespace {

namespace task = containerd::task::v2;

std::string text(const Payload& p) { return std::string(as_chars(p)); }

class TtrpcRpc : public ::testing::Test {
 protected:
  void SetUp() override {
    services_.add("skiff.test.Echo", "Echo",
                  [](const CallContext&, Payload p) -> kj::Promise<Payload> { return kj::mv(p); });
    services_.add("skiff.test.Echo", "Meta", [](const CallContext& ctx, Payload) -> kj::Promise<Payload> {
      return to_payload(ctx.get(kNamespaceKey).value_or("(none)"));
    });
    // Held until the test releases it by its payload.
    services_.add("skiff.test.Gate", "Wait", [this](const CallContext&, Payload p) -> kj::Promise<Payload> {
      started_.push_back(text(p));
      auto paf = kj::newPromiseAndFulfiller<Payload>();
      gates_[text(p)] = kj::mv(paf.fulfiller);
      return kj::mv(paf.promise);
    });
    services_.add("skiff.test.Gate", "Hang", [this](const CallContext&, Payload) -> kj::Promise<Payload> {
      ++hanging_;
      return kj::Promise<Payload>(kj::NEVER_DONE).attach(kj::defer([this] { --hanging_; }));
    });
    services_.add("skiff.test.Fail", "NotFound", [](const CallContext&, Payload) -> kj::Promise<Payload> {
      throw Error(Code::NotFound, "container c9");
    });
    services_.add("skiff.test.Fail", "Later", [](const CallContext&, Payload) -> kj::Promise<Payload> {
      return kj::evalLater([]() -> Payload { throw Error(Code::FailedPrecondition, "c1 is not running"); });
    });
    services_.add("skiff.test.Fail", "Std", [](const CallContext&, Payload) -> kj::Promise<Payload> {
      throw std::invalid_argument("bad bundle");
    });
    services_.add<task::StateRequest, task::StateResponse>(
        "containerd.task.v2.Task", "State", [](const CallContext& ctx, task::StateRequest req) {
          task::StateResponse r;
          r.set_id(req.id());
          r.set_exec_id(req.exec_id());
          r.set_bundle(std::string(ctx.get(kNamespaceKey).value_or("")));
          r.set_pid(4242);
          r.set_status(containerd::v1::types::RUNNING);
          return r;
        });
  }

  void start(ServerOptions options = {}) {
    server_ = std::make_unique<Server>(*io_.lowLevelProvider, timer(), std::move(services_), options);
  }
  kj::Timer& timer() { return io_.provider->getTimer(); }
  kj::WaitScope& ws() { return io_.waitScope; }

  // One end served, the other the test's.
  kj::Own<kj::AsyncIoStream> connect_raw() {
    auto pipe = io_.provider->newTwoWayPipe();
    server_->serve(kj::mv(pipe.ends[0]));
    return kj::mv(pipe.ends[1]);
  }
  std::unique_ptr<Client> connect() { return std::make_unique<Client>(connect_raw(), timer()); }

  void pump(int ms = 1) { timer().afterDelay(ms * kj::MILLISECONDS).wait(ws()); }
  template <typename Pred>
  bool pump_until(Pred pred) {
    for (int i = 0; i < 2000 && !pred(); ++i) pump();
    return pred();
  }

  Status failure(kj::Promise<Payload> p) {
    try {
      p.wait(ws());
    } catch (const kj::Exception& e) {
      return status_of(e);
    }
    return Status{};
  }

  static std::string request_frame(uint32_t id, const std::string& service, const std::string& method,
                                   const std::string& payload, int64_t timeout_nano = 0) {
    wire::Request r;
    r.set_service(service);
    r.set_method(method);
    r.set_payload(payload);
    r.set_timeout_nano(timeout_nano);
    return encode_frame(id, MessageType::Request, 0, r.SerializeAsString());
  }
  void write(kj::AsyncIoStream& s, const std::string& bytes) { s.write(bytes.data(), bytes.size()).wait(ws()); }
  // The next response frame's stream id and message.
  std::pair<uint32_t, wire::Response> read_response(FrameReader& r) {
    auto ev = r.next().wait(ws());
    EXPECT_EQ(ev.kind, FrameReader::Event::Kind::Frame);
    EXPECT_EQ(ev.frame.type, MessageType::Response);
    wire::Response resp;
    EXPECT_TRUE(resp.ParseFromString(ev.frame.payload));
    return {ev.frame.stream_id, resp};
  }
  // True when the server closed the stream without another byte.
  bool closed_by_server(kj::AsyncIoStream& s) {
    char b;
    return s.tryRead(&b, 1, 1).wait(ws()) == 0;
  }

  // Behind a unique_ptr: kj::Own's destructor may throw, gtest's fixture's may not.
  std::unique_ptr<kj::AsyncIoContext> io_holder_ = std::make_unique<kj::AsyncIoContext>(kj::setupAsyncIo());
  kj::AsyncIoContext& io_ = *io_holder_;
  ServiceSet services_;
  std::unique_ptr<Server> server_;
  std::vector<std::string> started_;
  std::map<std::string, kj::Own<kj::PromiseFulfiller<Payload>>> gates_;
  int hanging_ = 0;
};

TEST_F(TtrpcRpc, EchoRoundTrip) {
  start();
  auto c = connect();
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Echo", "hello").wait(ws())), "hello");
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Echo", "").wait(ws())), "");
  const std::string big(3 << 20, 'b');
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Echo", big).wait(ws())), big);
}

TEST_F(TtrpcRpc, ContainerdMessagesTypedBothEnds) {
  start();
  auto c = connect();
  task::StateRequest req;
  req.set_id("c1");
  req.set_exec_id("e1");
  CallOptions o;
  o.metadata = {{std::string(kNamespaceKey), "k8s.io"}};
  auto r = c->call<task::StateResponse>("containerd.task.v2.Task", "State", req, o).wait(ws());
  EXPECT_EQ(r.id(), "c1");
  EXPECT_EQ(r.exec_id(), "e1");
  EXPECT_EQ(r.bundle(), "k8s.io");
  EXPECT_EQ(r.pid(), 4242u);
  EXPECT_EQ(r.status(), containerd::v1::types::RUNNING);
}

TEST_F(TtrpcRpc, UnknownServiceOrMethodIsUnimplemented) {
  start();
  auto c = connect();
  EXPECT_EQ(failure(c->call("nope.Svc", "Echo", "")), (Status{Code::Unimplemented, "service nope.Svc"}));
  EXPECT_EQ(failure(c->call("skiff.test.Echo", "Nope", "")), (Status{Code::Unimplemented, "method Nope"}));
  // Names are bytes to Go; the answer quotes them back as they came (found by the fuzzer).
  EXPECT_EQ(failure(c->call("odd\xff\xfe", "Echo", "")), (Status{Code::Unimplemented, "service odd\xff\xfe"}));
}

TEST_F(TtrpcRpc, HandlerFailuresAnswerTheirStatus) {
  start();
  auto c = connect();
  EXPECT_EQ(failure(c->call("skiff.test.Fail", "NotFound", "")), (Status{Code::NotFound, "container c9"}));
  EXPECT_EQ(failure(c->call("skiff.test.Fail", "Later", "")), (Status{Code::FailedPrecondition, "c1 is not running"}));
  EXPECT_EQ(failure(c->call("skiff.test.Fail", "Std", "")), (Status{Code::InvalidArgument, "bad bundle"}));
  const auto bad = failure(c->call("containerd.task.v2.Task", "State", "\xff\xff\xff"));
  EXPECT_EQ(bad.code, Code::Internal);
  EXPECT_NE(bad.message.find("ttrpc: error unmarshalling payload"), std::string::npos) << bad.message;
  // The connection serves on after each.
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Echo", "still here").wait(ws())), "still here");
}

TEST_F(TtrpcRpc, ConcurrentCallsCompleteOutOfOrder) {
  start();
  auto c = connect();
  constexpr int kCalls = 8;
  std::vector<kj::Promise<void>> calls;
  std::vector<std::string> finished;
  for (int i = 0; i < kCalls; ++i) {
    const std::string key = "k" + std::to_string(i);
    calls.push_back(c->call("skiff.test.Gate", "Wait", key).then([&finished, key](Payload answer) {
      EXPECT_EQ(text(answer), "answer to " + key);
      finished.push_back(key);
    }).eagerlyEvaluate(nullptr));
  }
  ASSERT_TRUE(pump_until([&] { return started_.size() == kCalls; })) << "only " << started_.size() << " started";
  EXPECT_TRUE(finished.empty());
  for (int i = kCalls - 1; i >= 0; --i) {
    const std::string key = "k" + std::to_string(i);
    gates_[key]->fulfill(to_payload("answer to " + key));
    ASSERT_TRUE(pump_until([&] { return finished.size() == static_cast<size_t>(kCalls - i); }));
    EXPECT_EQ(finished.back(), key);
  }
  for (auto& p : calls) p.wait(ws());
}

TEST_F(TtrpcRpc, MetadataReachesTheHandler) {
  start();
  auto c = connect();
  CallOptions o;
  o.metadata = {{"other", "x"}, {std::string(kNamespaceKey), "default"}, {std::string(kNamespaceKey), "second"}};
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Meta", "", o).wait(ws())), "default");
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Meta", "").wait(ws())), "(none)");
}

TEST_F(TtrpcRpc, TheRequestTimeoutBoundsTheHandler) {
  start();
  auto s = connect_raw();
  FrameReader r(*s);
  write(*s, request_frame(1, "skiff.test.Gate", "Hang", "", 20'000'000));  // 20 ms
  auto [id, resp] = read_response(r);
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(from_proto(resp.status()), (Status{Code::DeadlineExceeded, "context deadline exceeded"}));
  EXPECT_EQ(hanging_, 0) << "the handler's promise was dropped";
  // Already past (Go's context.WithTimeout with a negative duration).
  write(*s, request_frame(3, "skiff.test.Echo", "Echo", "x", -1));
  EXPECT_EQ(static_cast<Code>(read_response(r).second.status().code()), Code::DeadlineExceeded);
}

TEST_F(TtrpcRpc, AnOkAnswerCarriesAnEmptyStatusAsGosDoes) {
  start();
  auto s = connect_raw();
  FrameReader r(*s);
  write(*s, request_frame(1, "skiff.test.Echo", "Echo", "p"));
  auto [id, resp] = read_response(r);
  EXPECT_TRUE(resp.has_status());
  EXPECT_EQ(resp.status().code(), 0);
  EXPECT_EQ(resp.payload(), "p");
}

TEST_F(TtrpcRpc, RawFramesAClientLibraryWouldNotSend) {
  start(ServerOptions{.max_in_flight = 16, .max_message = 256});
  auto s = connect_raw();
  FrameReader r(*s, 256);
  // An even stream id.
  write(*s, request_frame(2, "skiff.test.Echo", "Echo", "x"));
  auto even = read_response(r);
  EXPECT_EQ(even.first, 2u);
  EXPECT_EQ(from_proto(even.second.status()),
            (Status{Code::InvalidArgument, "StreamID must be odd for client initiated streams"}));
  // A payload that is not a Request.
  write(*s, encode_frame(3, MessageType::Request, 0, "\xff\xff\xff\xff"));
  EXPECT_EQ(static_cast<Code>(read_response(r).second.status().code()), Code::InvalidArgument);
  // A frame over the limit: skipped, answered, and the connection reads on.
  write(*s, encode_frame(5, MessageType::Request, 0, std::string(300, 'z'), 1000));
  auto big = read_response(r);
  EXPECT_EQ(big.first, 5u);
  EXPECT_EQ(from_proto(big.second.status()),
            (Status{Code::ResourceExhausted, "message length 300 exceed maximum message size of 256"}));
  // Data and response frames are ignored, as Go's server ignores them.
  write(*s, encode_frame(7, MessageType::Data, 0, "d") + encode_frame(9, MessageType::Response, 0, ""));
  write(*s, request_frame(11, "skiff.test.Echo", "Echo", "after"));
  auto after = read_response(r);
  EXPECT_EQ(after.first, 11u);
  EXPECT_EQ(after.second.payload(), "after");
}

TEST_F(TtrpcRpc, BytesThatAreNotTtrpcCloseTheConnection) {
  start();
  auto s = connect_raw();
  write(*s, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(closed_by_server(*s));
  EXPECT_TRUE(pump_until([&] { return server_->connections() == 0; }));
}

TEST_F(TtrpcRpc, AStreamEndingInsideAFrameClosesTheConnection) {
  start();
  auto s = connect_raw();
  write(*s, request_frame(1, "skiff.test.Echo", "Echo", "x").substr(0, 12));
  s->shutdownWrite();
  EXPECT_TRUE(closed_by_server(*s));
  EXPECT_TRUE(pump_until([&] { return server_->connections() == 0; }));
}

TEST_F(TtrpcRpc, ReadingPausesAtTheInFlightLimit) {
  start(ServerOptions{.max_in_flight = 2});
  auto c = connect();
  std::vector<kj::Promise<Payload>> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(c->call("skiff.test.Gate", "Wait", "g" + std::to_string(i)));
  ASSERT_TRUE(pump_until([&] { return started_.size() == 2; }));
  pump(20);
  EXPECT_EQ(started_.size(), 2u) << "a third handler started past the limit";
  gates_["g0"]->fulfill(to_payload("0"));
  ASSERT_TRUE(pump_until([&] { return started_.size() == 3; }));
  for (const char* k : {"g1", "g2"}) gates_[k]->fulfill(to_payload(k));
  ASSERT_TRUE(pump_until([&] { return started_.size() == 4; }));
  gates_["g3"]->fulfill(to_payload("3"));
  EXPECT_EQ(text(calls[0].wait(ws())), "0");
  EXPECT_EQ(text(calls[3].wait(ws())), "3");
}

TEST_F(TtrpcRpc, ClientTimesOutAndForgetsTheCall) {
  start();
  auto c = connect();
  CallOptions o;
  o.timeout = std::chrono::milliseconds(20);
  EXPECT_EQ(failure(c->call("skiff.test.Gate", "Hang", "", o)).code, Code::DeadlineExceeded);
  EXPECT_EQ(c->pending(), 0u);
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Echo", "ok").wait(ws())), "ok");
}

TEST_F(TtrpcRpc, ShutdownLetsCallsInFlightAnswer) {
  start();
  auto c = connect();
  auto call = c->call("skiff.test.Gate", "Wait", "last");
  ASSERT_TRUE(pump_until([&] { return started_.size() == 1; }));
  bool done = false;
  auto shut = server_->shutdown().then([&] { done = true; });
  pump(10);
  EXPECT_FALSE(done) << "shut down with a call in flight";
  gates_["last"]->fulfill(to_payload("bye"));
  EXPECT_EQ(text(call.wait(ws())), "bye");
  shut.wait(ws());
  EXPECT_TRUE(done);
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_TRUE(pump_until([&] { return !c->connected(); }));
  EXPECT_EQ(failure(c->call("skiff.test.Echo", "Echo", "")).code, Code::Unavailable);
}

TEST_F(TtrpcRpc, PendingCallsFailWhenTheServerGoes) {
  start();
  auto c = connect();
  auto call = c->call("skiff.test.Gate", "Wait", "x");
  ASSERT_TRUE(pump_until([&] { return started_.size() == 1; }));
  server_.reset();
  const auto st = failure(kj::mv(call));
  EXPECT_EQ(st.code, Code::Unavailable);
  EXPECT_NE(st.message.find("ttrpc: connection closed"), std::string::npos) << st.message;
  EXPECT_FALSE(c->connected());
}

TEST_F(TtrpcRpc, ADestroyedClientCancelsItsCalls) {
  start();
  auto c = connect();
  auto call = c->call("skiff.test.Gate", "Wait", "x");
  ASSERT_TRUE(pump_until([&] { return started_.size() == 1; }));
  c.reset();
  EXPECT_EQ(failure(kj::mv(call)), (Status{Code::Canceled, "ttrpc: client closed"}));
}

TEST_F(TtrpcRpc, ClientStreamIdsAreOddAndRisingAndAnswersMatchById) {
  // A hand-written server: answers the third call first, then one for a
  // stream nobody asked on, then the others.
  auto pipe = io_.provider->newTwoWayPipe();
  Client c(kj::mv(pipe.ends[0]), timer());
  auto& srv = *pipe.ends[1];
  FrameReader r(srv);
  std::vector<kj::Promise<Payload>> calls;
  for (int i = 0; i < 3; ++i) calls.push_back(c.call("s", "m", std::to_string(i)));
  std::vector<uint32_t> ids;
  for (int i = 0; i < 3; ++i) {
    auto ev = r.next().wait(ws());
    ASSERT_EQ(ev.frame.type, MessageType::Request);
    ids.push_back(ev.frame.stream_id);
  }
  EXPECT_EQ(ids, (std::vector<uint32_t>{1, 3, 5}));
  auto answer = [&](uint32_t id, const std::string& payload) {
    wire::Response resp;
    resp.mutable_status();
    resp.set_payload(payload);
    write(srv, encode_frame(id, MessageType::Response, 0, resp.SerializeAsString()));
  };
  answer(5, "two");
  answer(99, "nobody");
  answer(1, "zero");
  answer(3, "one");
  EXPECT_EQ(text(calls[2].wait(ws())), "two");
  EXPECT_EQ(text(calls[0].wait(ws())), "zero");
  EXPECT_EQ(text(calls[1].wait(ws())), "one");
  EXPECT_TRUE(c.connected());
  // A reply of the wrong type fails its call alone.
  auto odd = c.call("s", "m", "");
  r.next().wait(ws());
  write(srv, encode_frame(7, MessageType::Data, 0, ""));
  EXPECT_EQ(failure(kj::mv(odd)).code, Code::Internal);
  EXPECT_TRUE(c.connected());
}

class TtrpcRpcSocket : public TtrpcRpc {
 protected:
  void SetUp() override {
    TtrpcRpc::SetUp();
    char tmpl[] = "/tmp/skiff-ttrpc-rpc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TtrpcRpcSocket, ServesAUnixSocketAndRemovesItAtTheEnd) {
  start();
  const auto a = UnixAddress::parse("unix://" + dir_ + "/s/shim.sock");
  server_->listen(a);
  auto c = Client::connect(*io_.lowLevelProvider, timer(), a).wait(ws());
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Echo", "over a socket").wait(ws())), "over a socket");
  auto c2 = Client::connect(*io_.lowLevelProvider, timer(), a).wait(ws());
  EXPECT_EQ(text(c2->call("skiff.test.Echo", "Echo", "second").wait(ws())), "second");
  EXPECT_EQ(server_->connections(), 2u);
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(a.name));
}

TEST_F(TtrpcRpcSocket, ConnectingToNothingIsUnavailable) {
  const auto a = UnixAddress::path(dir_ + "/none.sock");
  try {
    Client::connect(*io_.lowLevelProvider, timer(), a).wait(ws());
    FAIL() << "connected to nothing";
  } catch (const kj::Exception& e) {
    const auto st = status_of(e);
    EXPECT_EQ(st.code, Code::Unavailable);
    EXPECT_EQ(st.message.rfind("connect to unix://" + a.name + ": ", 0), 0u) << st.message;
  }
}

TEST_F(TtrpcRpcSocket, APeerOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  start();
  // Abstract: no file mode in the way, only the credential check.
  const auto a = UnixAddress::abstract("skiff-ttrpc-peer-" + std::to_string(::getpid()));
  server_->listen(a);
  const std::string req = request_frame(1, "skiff.test.Echo", "Echo", "x");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // nobody: connect, ask, and expect the connection closed unanswered.
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    const socklen_t len = a.to_sockaddr(sa);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) ::_exit(4);
    if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) ::_exit(0);  // already closed
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) ::_exit(5);
    char b;
    ::_exit(::read(fd, &b, 1) <= 0 ? 0 : 1);
  }
  int status = 0;
  pid_t waited = 0;
  for (int i = 0; i < 2000 && (waited = ::waitpid(child, &status, WNOHANG)) == 0; ++i) pump(5);
  ASSERT_EQ(waited, child) << "the child did not finish";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: answered; 3: setuid; 4: connect; 5: no close";
  // Root (this process) is served.
  auto c = Client::connect(*io_.lowLevelProvider, timer(), a).wait(ws());
  EXPECT_EQ(text(c->call("skiff.test.Echo", "Echo", "root").wait(ws())), "root");
}

}  // namespace
}  // namespace skiff::ttrpc
