// The crash journal the supervisor reads after a worker dies, the count that poisons a
// READ, and the failpoint spec (tools/lazyblobd_read_journal.h, lazyblobd_read_watch.h).
#include "tools/lazyblobd_read_journal.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "tools/lazyblobd_read_watch.h"

namespace lazyblob {
namespace {

using std::chrono::seconds;

// The journal lives in a shared mapping: what a child (the worker) began and never ended
// is what the parent (the supervisor) finds after the child died.
TEST(ReadJournal, ReadsInFlightWhenTheWorkerDiesAreSeenByTheSupervisor) {
  auto journal = ReadJournal::Create(4);
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    (*journal)->Begin(7, "blob-a", 4096, 8192);
    (*journal)->Begin(8, "blob-b", 0, 4096);
    (*journal)->End(8);
    ::_exit(0);
  }
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  const std::vector<JournaledRead> left = (*journal)->Snapshot();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0], (JournaledRead{"blob-a", 4096, 8192}));
  EXPECT_EQ(left[0].Describe(), "blob 'blob-a' [4096, +8192)");
  (*journal)->Clear();
  EXPECT_TRUE((*journal)->Snapshot().empty());
}

TEST(ReadJournal, MoreReadsThanSlotsAreServedUnrecorded) {
  auto journal = ReadJournal::Create(1);
  ASSERT_TRUE(journal.ok());
  (*journal)->Begin(1, "a", 0, 4096);
  (*journal)->Begin(2, "a", 4096, 4096);  // no room: not recorded
  EXPECT_EQ((*journal)->Snapshot().size(), 1u);
  (*journal)->End(1);
  (*journal)->End(2);
  EXPECT_TRUE((*journal)->Snapshot().empty());
}

// Issue 14 (2): the blobs a worker had open when it died, counted per holder.
TEST(ReadJournal, BlobsOpenWhenTheWorkerDiesAreSeenByTheSupervisor) {
  auto journal = ReadJournal::Create(4, 4);
  ASSERT_TRUE(journal.ok());
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    (*journal)->BlobOpened("kept");
    (*journal)->BlobOpened("kept");  // two objects of one blob
    (*journal)->BlobClosed("kept");
    (*journal)->BlobOpened("gone");
    (*journal)->BlobClosed("gone");
    ::_exit(0);
  }
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  EXPECT_EQ((*journal)->OpenBlobs(), std::vector<std::string>{"kept"});
  (*journal)->Clear();
  EXPECT_TRUE((*journal)->OpenBlobs().empty());
}

// An inherited lease is kept (and journaled, for a further death) until the engine opens
// the blob itself.
TEST(ReadWatch, AnInheritedLeaseIsHeldUntilTheBlobIsReopened) {
  char tmpl[] = "/var/tmp/lazyblob-watch-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string store = tmpl;
  auto lease = BlobLease::Acquire(store, "b");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  auto journal = ReadJournal::Create(4, 4);
  ASSERT_TRUE(journal.ok());
  std::vector<BlobLease> leases;
  leases.push_back(std::move(*lease));
  {
    ReadWatch w(journal->get(), {}, Failpoint{}, false, std::move(leases));
    EXPECT_EQ(w.inherited_leases(), 1u);
    EXPECT_EQ((*journal)->OpenBlobs(), std::vector<std::string>{"b"});
    w.ObjectOpened("other");
    EXPECT_EQ(w.inherited_leases(), 1u);
    w.ObjectOpened("b");
    EXPECT_EQ(w.inherited_leases(), 0u);
    // Still open: now as the engine's object.
    EXPECT_EQ((*journal)->OpenBlobs().size(), 2u);
    w.ObjectClosed("b");
    EXPECT_EQ((*journal)->OpenBlobs(), std::vector<std::string>{"other"});
  }
  std::filesystem::remove_all(store);
}

TEST(CrashTracker, ARangeInFlightAtLimitDeathsWithinTheWindowIsPoisoned) {
  CrashTracker t(3, seconds(60));
  const auto t0 = CrashTracker::Clock::now();
  const JournaledRead bad{"b", 1 << 20, 65536}, once{"b", 0, 4096};
  EXPECT_TRUE(t.WorkerDied({bad, once}, t0).empty());
  EXPECT_TRUE(t.WorkerDied({bad}, t0 + seconds(1)).empty());
  const auto newly = t.WorkerDied({bad}, t0 + seconds(2));
  ASSERT_EQ(newly.size(), 1u);
  EXPECT_EQ(newly[0], bad);
  ASSERT_EQ(t.poisoned().size(), 1u);
  EXPECT_TRUE(t.WorkerDied({bad}, t0 + seconds(3)).empty());  // reported once
  EXPECT_EQ(t.poisoned().size(), 1u);
}

TEST(CrashTracker, DeathsOutsideTheWindowDoNotCount) {
  CrashTracker t(2, seconds(10));
  const auto t0 = CrashTracker::Clock::now();
  const JournaledRead r{"b", 0, 4096};
  EXPECT_TRUE(t.WorkerDied({r}, t0).empty());
  EXPECT_TRUE(t.WorkerDied({r}, t0 + seconds(11)).empty());
  EXPECT_EQ(t.WorkerDied({r}, t0 + seconds(12)).size(), 1u);
  CrashTracker never(0, seconds(10));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(never.WorkerDied({r}, t0 + seconds(i)).empty());
}

TEST(ReadWatch, FailsReadsOverlappingAPoisonedRangeOnly) {
  ReadWatch w(nullptr, {JournaledRead{"b", 65536, 65536}}, Failpoint{}, true);
  EXPECT_FALSE(w.BeginRead(1, "b", 65536, 65536));
  EXPECT_FALSE(w.BeginRead(2, "b", 69632, 4096));  // the kernel's 4 KiB retry inside it
  EXPECT_FALSE(w.BeginRead(3, "b", 0, 69632));     // overlaps its start
  EXPECT_TRUE(w.BeginRead(4, "b", 0, 65536));
  EXPECT_TRUE(w.BeginRead(5, "b", 131072, 4096));
  EXPECT_TRUE(w.BeginRead(6, "c", 65536, 65536));  // another blob
}

TEST(ReadWatch, ReadsTheLastWorkerLeftUnansweredAreCountedWhenReDelivered) {
  ReadWatch w(nullptr, {}, Failpoint{}, false);
  w.ExpectRedelivered({JournaledRead{"b", 4096, 4096}});
  EXPECT_TRUE(w.BeginRead(1, "b", 0, 4096));
  EXPECT_EQ(w.redelivered(), 0u);
  EXPECT_TRUE(w.BeginRead(2, "b", 4096, 4096));
  EXPECT_EQ(w.redelivered(), 1u);
  EXPECT_TRUE(w.BeginRead(3, "b", 4096, 4096));  // once
  EXPECT_EQ(w.redelivered(), 1u);
}

TEST(Failpoint, SpecsParseAndBadOnesAreRefused) {
  auto none = ParseFailpoint(nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->kind, Failpoint::Kind::kNone);
  auto crash = ParseFailpoint("crash_on_read:1000000");
  ASSERT_TRUE(crash.ok());
  EXPECT_EQ(crash->kind, Failpoint::Kind::kCrashOnRead);
  EXPECT_EQ(crash->offset, 1000000u);
  auto hold = ParseFailpoint("hold_read");
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(hold->kind, Failpoint::Kind::kHoldRead);
  EXPECT_FALSE(hold->offset.has_value());
  auto one_blob = ParseFailpoint("crash_on_read:app:v1:4096");
  ASSERT_TRUE(one_blob.ok());
  EXPECT_EQ(one_blob->blob_id, "app:v1");
  EXPECT_EQ(one_blob->offset, 4096u);
  EXPECT_FALSE(ParseFailpoint("crash_on_read").ok());
  EXPECT_FALSE(ParseFailpoint("crash_on_read:12x").ok());
  EXPECT_FALSE(ParseFailpoint("explode").ok());
}

}  // namespace
}  // namespace lazyblob
