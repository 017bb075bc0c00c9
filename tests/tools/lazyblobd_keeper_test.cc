#include "tools/lazyblobd_keeper.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/lazyblob_control_protocol.h"

namespace lazyblob {
namespace {

std::pair<UniqueFd, UniqueFd> Pair() {
  int sp[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  return {UniqueFd(sp[0]), UniqueFd(sp[1])};
}

// The supervisor's side (keeper) and one worker's side (client) over a fresh socketpair.
KeeperClient Attach(const FdKeeper& keeper, UniqueFd* supervisor_end) {
  auto [sup, wrk] = Pair();
  EXPECT_TRUE(keeper.SendAll(sup.get()).ok());
  auto client = KeeperClient::Connect(std::move(wrk));
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  *supervisor_end = std::move(sup);
  return std::move(*client);
}

TEST(FdKeeper, AWorkerGetsBackWhatItsDeadPredecessorPut) {
  FdKeeper keeper;
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd pipe_r(p[0]), pipe_w(p[1]);
  UniqueFd sup;
  {
    KeeperClient first = Attach(keeper, &sup);
    EXPECT_TRUE(first.initial().empty());
    ASSERT_TRUE(first.Put("file:a", "/cache/a", pipe_w.get()).ok());
    ASSERT_TRUE(first.Put("mount:7", "/mnt\na", -1).ok());
    ASSERT_TRUE(first.Put("gone", "x", -1).ok());
    ASSERT_TRUE(first.Drop("gone").ok());
  }  // the worker "dies": its end closes with its messages still queued
  pipe_w.reset();
  ASSERT_TRUE(keeper.DrainToEnd(sup.get()).ok());
  ASSERT_EQ(keeper.size(), 2u);

  KeeperClient second = Attach(keeper, &sup);
  auto& kept = second.initial();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept.at("mount:7").value, "/mnt\na");
  EXPECT_FALSE(kept.at("mount:7").fd.valid());
  ASSERT_TRUE(kept.at("file:a").fd.valid());
  EXPECT_EQ(kept.at("file:a").value, "/cache/a");
  // The kept fd is the same pipe: what goes in comes out of the original read end.
  ASSERT_EQ(::write(kept.at("file:a").fd.get(), "z", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(pipe_r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'z');
}

TEST(FdKeeper, DrainAppliesWhatIsQueuedWithoutBlocking) {
  FdKeeper keeper;
  UniqueFd sup;
  KeeperClient client = Attach(keeper, &sup);
  auto open = keeper.Drain(sup.get());
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(*open);
  ASSERT_TRUE(client.Put("k", "v", -1).ok());
  open = keeper.Drain(sup.get());
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(*open);
  EXPECT_EQ(keeper.size(), 1u);
  EXPECT_FALSE(client.Put("", "v", -1).ok());  // keys are 1..1024 bytes
}

TEST(FdKeeper, AClientWithoutASupervisorKeepsNothingAndFailsNothing) {
  KeeperClient none;
  EXPECT_FALSE(none.connected());
  EXPECT_TRUE(none.Put("k", "v", 0).ok());
  EXPECT_TRUE(none.Drop("k").ok());
}

TEST(ControlProtocol, MessagesRoundTripAndCarryStatuses) {
  ControlMessage m;
  m.verb = "prepare";
  m.Add("id", "app-v1").Add("device", "d1").Add("device", "d2").Add("dir", "/mnt/a b=c");
  auto bytes = m.Encode();
  ASSERT_TRUE(bytes.ok());
  auto back = ControlMessage::Decode(*bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->verb, "prepare");
  EXPECT_EQ(back->Get("dir"), "/mnt/a b=c");
  EXPECT_EQ(back->GetAll("device"), (std::vector<std::string>{"d1", "d2"}));
  EXPECT_EQ(back->Get("missing"), "");

  ControlMessage bad;
  bad.verb = "x";
  bad.Add("dir", "two\nlines");
  EXPECT_FALSE(bad.Encode().ok());
  EXPECT_FALSE(ControlMessage::Decode("no newline").ok());
  EXPECT_FALSE(ControlMessage::Decode("verb\nnokey\n").ok());

  const Status s = ReplyStatus(ErrorReply(NotFound("blob 'x' is not in the store")));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "blob 'x' is not in the store");
  EXPECT_TRUE(ReplyStatus(OkReply()).ok());
}

TEST(ControlProtocol, AFdTravelsWithAMessage) {
  auto [a, b] = Pair();
  ControlMessage m;
  m.verb = "mounted";
  UniqueFd ns(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(SendControl(a.get(), m, ns.get()).ok());
  UniqueFd got;
  auto r = ReceiveControl(b.get(), 1000, &got);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->verb, "mounted");
  EXPECT_TRUE(got.valid());
  a.reset();
  EXPECT_EQ(ReceiveControl(b.get(), 1000).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace lazyblob
