#include "transport/access_journal.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

namespace lazyblob {
namespace {

TEST(AccessJournal, RecordsUntilClearedAndReusesSlots) {
  auto j = AccessJournal::Create(4);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  AccessJournal& journal = **j;
  EXPECT_EQ(journal.free_slots(), 4u);
  auto a = journal.Record(7, 1, 2, 4096, 8192);
  auto b = journal.Record(8, 1, 3, 0, 4096);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(journal.free_slots(), 2u);
  auto recorded = journal.Recorded();
  ASSERT_EQ(recorded.size(), 2u);
  std::set<int> fds;
  for (const auto& e : recorded) fds.insert(e.fd);
  EXPECT_EQ(fds, (std::set<int>{7, 8}));
  journal.Clear(*a);
  journal.Clear(*a);  // twice: a no-op, not a second free slot
  EXPECT_EQ(journal.free_slots(), 3u);
  ASSERT_EQ(journal.Recorded().size(), 1u);
  EXPECT_EQ(journal.Recorded()[0].ino, 3u);
  EXPECT_EQ(journal.Recorded()[0].count, 4096u);
}

TEST(AccessJournal, AFullJournalRefusesARecord) {
  auto j = AccessJournal::Create(1);
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE((*j)->Record(3, 0, 0, 0, 1).ok());
  auto full = (*j)->Record(4, 0, 0, 0, 1);
  EXPECT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kBusy);
}

// The journal outlives a forked reader that dies mid-work: its records and its "reading"
// flag are what the next reader finds, and Adopt() keeps the recorded slots out of the
// free list.
TEST(AccessJournal, ARecordOfAForkedReaderThatDiedIsSeenByTheParent) {
  auto j = AccessJournal::Create(8);
  ASSERT_TRUE(j.ok());
  AccessJournal& journal = **j;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    journal.BeginRead(4096);
    if (!journal.Record(42, 9, 10, 12288, 4096).ok()) ::_exit(1);
    ::_exit(0);  // died before EndRead and before answering
  }
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_TRUE(journal.ReadInProgress());
  EXPECT_EQ(journal.sweep_fds(), 4096u);
  auto orphans = journal.Recorded();
  ASSERT_EQ(orphans.size(), 1u);
  EXPECT_EQ(orphans[0].fd, 42);
  EXPECT_EQ(orphans[0].offset, 12288u);
  journal.Adopt();
  EXPECT_EQ(journal.free_slots(), 7u);
  journal.Clear(orphans[0].slot);
  journal.EndRead();
  EXPECT_EQ(journal.free_slots(), 8u);
  EXPECT_FALSE(journal.ReadInProgress());
}

}  // namespace
}  // namespace lazyblob
