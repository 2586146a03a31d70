#include "transfer/watch.hpp"

namespace hubcache::transfer {

namespace {
thread_local DownloadWatch* t_watch = nullptr;
}  // namespace

DownloadWatch* current_download_watch() { return t_watch; }

ScopedDownloadWatch::ScopedDownloadWatch(DownloadWatch* watch) : previous_(t_watch) { t_watch = watch; }

ScopedDownloadWatch::~ScopedDownloadWatch() { t_watch = previous_; }

}  // namespace hubcache::transfer
