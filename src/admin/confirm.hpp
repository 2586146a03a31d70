// Shared front end of the deleting commands (rm, prune, gc): print a plan, ask,
// execute. Internal to hubcache (used by the CLI), not part of the public API.
#pragma once

#include <iosfwd>
#include <string>

#include "hubcache/admin.hpp"

namespace hubcache::admin {

struct ConfirmOptions {
  bool dry_run = false;
  bool yes = false;
  std::string nothing_message = "Nothing to delete.";
};

// Prints the plan ("About to delete N repo(s) and M revision(s) totalling X." and
// the entries) and its warnings on `err`, asks on stdin unless `yes`, executes.
// Throws Error(invalid_argument) when confirmation is needed and stdin is not a
// terminal. Returns 0 (also when the user declines: nothing is deleted).
int confirm_and_execute(const DeletePlan& plan, const ConfirmOptions& options, std::ostream& out, std::ostream& err);

}  // namespace hubcache::admin
