#include "admin/confirm.hpp"

#include <unistd.h>

#include <iostream>

#include "hubcache/error.hpp"

namespace hubcache::admin {

int confirm_and_execute(const DeletePlan& plan, const ConfirmOptions& options, std::ostream& out, std::ostream& err) {
  for (const auto& w : plan.warnings) err << "warning: " << w << "\n";
  if (plan.empty()) {
    out << options.nothing_message << "\n";
    return 0;
  }
  out << "About to delete " << plan.nb_repos << " repo(s) and " << plan.nb_revisions << " revision(s)";
  if (!plan.incomplete.empty()) out << " and " << plan.incomplete.size() << " incomplete file(s)";
  if (!plan.temps.empty()) out << " and " << plan.temps.size() << " leftover temp file(s)";
  out << " totalling " << format_size(plan.expected_freed) << ".\n";
  for (const auto& e : plan.entries) out << "  - " << e << "\n";
  if (options.dry_run) {
    out << "Dry run: nothing was deleted.\n";
    return 0;
  }
  if (!options.yes) {
    if (!::isatty(STDIN_FILENO))
      throw Error(ErrorCode::invalid_argument,
                  "Refusing to delete without confirmation: stdin is not a terminal. Pass -y/--yes to confirm, or "
                  "--dry-run to only see what would be deleted.");
    out << "Proceed? [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes" && answer != "YES") {
      out << "Cancelled: nothing was deleted.\n";
      return 0;
    }
  }
  auto result = plan.execute();
  for (const auto& w : result.warnings) err << "warning: " << w << "\n";
  out << "Done. Freed " << format_size(result.freed) << ".\n";
  return 0;
}

}  // namespace hubcache::admin
