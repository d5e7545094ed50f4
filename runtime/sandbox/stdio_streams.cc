#include "runtime/sandbox/stdio_streams.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys_error.h"

namespace skiff::runtime {

FdOutputStream::FdOutputStream(UniqueFd fd) : fd_(std::move(fd)), writer_([this] { run(); }) {}

FdOutputStream::~FdOutputStream() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

kj::Promise<void> FdOutputStream::write(WriteContext ctx) {
  auto bytes = ctx.getParams().getBytes();
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size()), kj::mv(paf.fulfiller)});
  }
  cv_.notify_one();
  return kj::mv(paf.promise);
}

kj::Promise<void> FdOutputStream::end(EndContext) {
  // The writer thread drains what is queued; the fd closes with the stream.
  return kj::READY_NOW;
}

void FdOutputStream::run() {
  bool broken = false;
  for (;;) {
    Chunk chunk;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      chunk = std::move(queue_.front());
      queue_.pop_front();
    }
    size_t off = 0;
    while (!broken && off < chunk.bytes.size()) {
      ssize_t n = retry_eintr([&] { return ::write(fd_.get(), chunk.bytes.data() + off, chunk.bytes.size() - off); });
      if (n <= 0) broken = true;  // EPIPE and the like: the reader is gone
      else off += static_cast<size_t>(n);
    }
    chunk.done->fulfill();
  }
}

namespace {

// The blocking half: fd -> socket, on a detached thread that owns both.
void start_copier(UniqueFd in, UniqueFd out) {
  std::thread([in = std::move(in), out = std::move(out)] {
    char buf[16384];
    for (;;) {
      const ssize_t n = retry_eintr([&] { return ::read(in.get(), buf, sizeof buf); });
      if (n <= 0) return;  // EOF (or an error): closing `out` is the EOF the loop sees
      for (ssize_t off = 0; off < n;) {
        const ssize_t w = retry_eintr([&] { return ::send(out.get(), buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL); });
        if (w <= 0) return;  // the pump is gone
        off += w;
      }
    }
  }).detach();
}

kj::Promise<void> pump(kj::AsyncInputStream& in, api::ByteStream::Client stream, kj::Array<kj::byte> buf) {
  auto read = in.tryRead(buf.begin(), 1, buf.size());
  return read.then([&in, stream = kj::mv(stream), buf = kj::mv(buf)](size_t n) mutable -> kj::Promise<void> {
    if (n == 0) return stream.endRequest().send().ignoreResult();
    auto req = stream.writeRequest();
    req.setBytes(kj::arrayPtr(buf.begin(), n));
    auto sent = req.send();  // resolves when flow control lets the next one go
    return sent.then([&in, stream = kj::mv(stream), buf = kj::mv(buf)]() mutable { return pump(in, kj::mv(stream), kj::mv(buf)); });
  });
}

kj::Own<kj::AsyncIoStream> start(kj::AsyncIoContext& io, UniqueFd fd) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair for stdin");
  UniqueFd ours(sv[0]), theirs(sv[1]);
  start_copier(std::move(fd), std::move(theirs));
  return io.lowLevelProvider->wrapSocketFd(ours.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
}

}  // namespace

FdInputPump::FdInputPump(kj::AsyncIoContext& io, UniqueFd fd, api::ByteStream::Client stream)
    : socket_(start(io, std::move(fd))),
      pump_(pump(*socket_, kj::mv(stream), kj::heapArray<kj::byte>(16384)).eagerlyEvaluate([](kj::Exception&&) {
        // The process ended or closed its stdin: nobody wants the rest.
      })) {}

}  // namespace skiff::runtime
