#include "transport/pending_fanotify_event.h"

#include <cerrno>

#include "transport/fanotify_group.h"

namespace lazyblob {

Status PendingFanotifyEvent::Allow() {
  FanotifyGroup* g = std::exchange(group_, nullptr);
  if (g == nullptr) return Internal("fanotify event answered twice (or needs no answer)");
  return g->Allow(event_.fd.get());
}

Status PendingFanotifyEvent::Deny(int err) {
  FanotifyGroup* g = std::exchange(group_, nullptr);
  if (g == nullptr) return Internal("fanotify event answered twice (or needs no answer)");
  return g->Deny(event_.fd.get(), FanotifyGroup::IsDenyErrno(err) ? err : EIO);
}

void PendingFanotifyEvent::DenyIfUnanswered() {
  if (group_ != nullptr) Deny(EIO).IgnoreError();
}

}  // namespace lazyblob
