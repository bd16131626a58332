// vmm/api/round_trip.h — a request's work done on another thread's event loop, its reply
// delivered on the API thread, with the reply callback never left behind on the way.
//
//   round_trip([&](std::function<void()> f) { machine.post_to_event_loop(std::move(f)); },
//              api_io, [&] { return machine.metrics_json(); },
//              [reply](json::object m) { reply(ok_json(m)); });
//
// The reply callback holds the API session (a shared_ptr: its socket, its timers, the
// server's count of open sessions), which must end on the API thread. A callback copied
// into the reply post leaves its original with the event loop's handler, destroyed there
// once the handler returns: when the API thread has already written the reply by then,
// that copy is the session's last reference and the session ends on the wrong thread (a
// data race on the server's session count, found by TSan in api_kvm_test on a nested PVM
// host). The callback is moved at each hop instead, so the handlers of `post` and of the
// post to `io` hold it one after the other and only the API thread runs or destroys it
// (unless `io` is destroyed with the reply still queued: after the API thread ended).
#pragma once

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace labyrinth::vmm::api {

// post(handler) runs handler on the other thread; work() runs there and its result goes to
// done(result) on io's thread.
template <class Post, class Work, class Done>
void round_trip(Post&& post, boost::asio::io_context& io, Work work, Done done) {
  std::forward<Post>(post)([&io, work = std::move(work), done = std::move(done)]() mutable {
    boost::asio::post(
        io, [done = std::move(done), result = work()]() mutable { done(std::move(result)); });
  });
}

}  // namespace labyrinth::vmm::api
