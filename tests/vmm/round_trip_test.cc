// round_trip (vmm/api/round_trip.h): the reply callback, which holds an API session,
// runs and ends on the API thread only; the event loop's thread never destroys a live copy.
#include "vmm/api/round_trip.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace labyrinth::vmm::api {
namespace {

namespace asio = boost::asio;

// Counts the live instances that end on a thread other than `home` (a moved-from one is
// not live: it holds nothing).
struct Witness {
  std::atomic<int>* foreign;
  std::thread::id home;
  bool live = true;
  Witness(std::atomic<int>* f, std::thread::id h) : foreign(f), home(h) {}
  Witness(const Witness& o) = default;
  Witness(Witness&& o) noexcept : foreign(o.foreign), home(o.home), live(o.live) { o.live = false; }
  Witness& operator=(const Witness&) = delete;
  Witness& operator=(Witness&&) = delete;
  ~Witness() {
    if (live && std::this_thread::get_id() != home) foreign->fetch_add(1);
  }
};

TEST(RoundTrip, TheReplyRunsAndEndsOnTheApiThreadOnly) {
  asio::io_context loop_io, api_io;  // the VM's event loop; the API thread's (this one)
  auto guard = asio::make_work_guard(loop_io);
  auto api_guard = asio::make_work_guard(api_io);  // run_one() below waits for the reply
  std::thread loop([&] { loop_io.run(); });
  std::atomic<int> foreign{0};
  std::thread::id worked_on, replied_on;
  int got = 0;
  std::function<void(int)> done = [w = Witness(&foreign, std::this_thread::get_id()), &got,
                                   &replied_on](int v) {
    got = v;
    replied_on = std::this_thread::get_id();
  };
  round_trip([&](std::function<void()> f) { asio::post(loop_io, std::move(f)); }, api_io,
             [&] {
               worked_on = std::this_thread::get_id();
               return 42;
             },
             std::move(done));
  EXPECT_EQ(api_io.run_one(), 1u);  // waits for the reply the loop posts
  guard.reset();
  loop.join();  // the loop's handler, and whatever it kept, are gone now
  EXPECT_EQ(got, 42);
  EXPECT_NE(worked_on, std::this_thread::get_id()) << "the work ran on the event loop";
  EXPECT_EQ(replied_on, std::this_thread::get_id()) << "the reply ran on the API thread";
  EXPECT_EQ(foreign.load(), 0) << "a live copy of the reply callback ended on the event loop";
}

}  // namespace
}  // namespace labyrinth::vmm::api
