// The event hub: formatting, permissions, bounded queues, the subscriber cap, heartbeats,
// session checks and the end at shutdown.
#include "agent/events/events.hpp"

#include <gtest/gtest.h>

#include <boost/json/object.hpp>

namespace aibox::agent::events {
namespace {

using namespace std::chrono_literals;

// What one pull of a stream got.
struct Pulled {
  bool answered = false;
  std::string piece;
  bool more = true;
};

Pulled pull(const http::PushSource& source) {
  auto out = std::make_shared<Pulled>();
  source(1 << 20, [out](std::string piece, bool more) {
    out->answered = true;
    out->piece = std::move(piece);
    out->more = more;
  });
  return *out;
}

// A pull that waits: its answer lands in `out` when something comes.
void pullLater(const http::PushSource& source, const std::shared_ptr<Pulled>& out) {
  source(1 << 20, [out](std::string piece, bool more) {
    out->answered = true;
    out->piece = std::move(piece);
    out->more = more;
  });
}

Hub::Allows only(std::string permission) {
  return [permission](std::string_view p) { return p == permission; };
}

TEST(Events, FormatIsOneEventOfOneDataLine) {
  EXPECT_EQ(format("job", boost::json::object{{"id", "a\nb"}}),
            "event: job\ndata: {\"id\":\"a\\nb\"}\n\n");
}

TEST(Events, StreamStartsWithHelloAndGetsWhatItMayRead) {
  boost::asio::io_context io;
  Hub hub(io, {});
  auto stream = hub.subscribe(format("hello", boost::json::object{}), only("model:read"), nullptr);
  ASSERT_TRUE(stream);
  auto first = pull(*stream);
  ASSERT_TRUE(first.answered);
  EXPECT_EQ(first.piece, "retry: 5000\nevent: hello\ndata: {}\n\n");
  EXPECT_TRUE(first.more);

  auto waiting = std::make_shared<Pulled>();
  pullLater(*stream, waiting);
  EXPECT_FALSE(waiting->answered) << "nothing to send yet: the pull waits";
  hub.publish("hardware_event", "hardware:read", boost::json::object{{"n", 1}});
  EXPECT_FALSE(waiting->answered) << "not allowed to this subscriber";
  hub.publish("job", "model:read", boost::json::object{{"n", 2}});
  ASSERT_TRUE(waiting->answered);
  EXPECT_EQ(waiting->piece, "event: job\ndata: {\"n\":2}\n\n");
}

TEST(Events, SlowClientLosesTheOldestAndIsToldToResync) {
  boost::asio::io_context io;
  Hub hub(io, {.maxClients = 4, .heartbeat = 15s, .queueEvents = 3});
  auto stream = hub.subscribe(format("hello", boost::json::object{}), only("model:read"), nullptr);
  ASSERT_TRUE(stream);
  pull(*stream);  // hello
  for (int i = 0; i < 5; ++i) {
    hub.publish("job", "model:read", boost::json::object{{"n", i}});
  }
  auto got = pull(*stream);
  EXPECT_EQ(got.piece,
            "event: resync\ndata: {\"dropped\":2}\n\n"
            "event: job\ndata: {\"n\":2}\n\nevent: job\ndata: {\"n\":3}\n\n"
            "event: job\ndata: {\"n\":4}\n\n");
}

TEST(Events, CapCountsOpenStreamsOnly) {
  boost::asio::io_context io;
  Hub hub(io, {.maxClients = 2});
  auto a = hub.subscribe("", only("x"), nullptr);
  auto b = hub.subscribe("", only("x"), nullptr);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(hub.subscribe("", only("x"), nullptr));
  EXPECT_EQ(hub.subscribers(), 2u);
  a.reset();  // the connection closed: its source is dropped
  EXPECT_EQ(hub.subscribers(), 1u);
  EXPECT_TRUE(hub.subscribe("", only("x"), nullptr));
}

TEST(Events, HeartbeatsAndAnEndedSessionEndsTheStream) {
  boost::asio::io_context io;
  Hub hub(io, {.heartbeat = 1s});
  bool valid = true;
  auto stream = hub.subscribe("", only("x"), [&valid] { return valid; });
  ASSERT_TRUE(stream);
  pull(*stream);
  auto beat = std::make_shared<Pulled>();
  pullLater(*stream, beat);
  io.run_for(1500ms);
  ASSERT_TRUE(beat->answered);
  EXPECT_EQ(beat->piece, ":\n\n");
  EXPECT_TRUE(beat->more);

  valid = false;
  auto last = std::make_shared<Pulled>();
  pullLater(*stream, last);
  io.restart();
  io.run_for(1500ms);
  ASSERT_TRUE(last->answered);
  EXPECT_EQ(last->piece, "event: end\ndata: {\"reason\":\"session_ended\"}\n\n");
  EXPECT_FALSE(last->more);
}

TEST(Events, CloseEndsEveryStreamAndRefusesNewOnes) {
  boost::asio::io_context io;
  Hub hub(io, {});
  auto stream = hub.subscribe("", only("x"), nullptr);
  ASSERT_TRUE(stream);
  pull(*stream);
  auto last = std::make_shared<Pulled>();
  pullLater(*stream, last);
  hub.close();
  ASSERT_TRUE(last->answered);
  EXPECT_EQ(last->piece, "event: end\ndata: {\"reason\":\"shutdown\"}\n\n");
  EXPECT_FALSE(last->more);
  EXPECT_FALSE(hub.subscribe("", only("x"), nullptr));
  hub.publish("x", "x", boost::json::object{});  // nothing listens; nothing breaks
}

}  // namespace
}  // namespace aibox::agent::events
