// hubcache ls: what the cache holds (Python's `hf cache ls`), with filters and sorting.
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <unordered_set>

#include "cli/command.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "util/shell.hpp"

namespace hubcache::cli {
namespace {

using namespace hubcache::admin;

struct LsArgs {
  std::string cache_dir;
  bool revisions = false;
  std::vector<std::string> filters;
  std::string sort;
  int limit = -1;
  std::string format = "table";
  bool show_warnings = false;
};

struct Row {
  const CachedRepo* repo;
  const CachedRevision* rev;  // null in repo mode
  std::uint64_t size;
  TimePoint accessed, modified;
  std::vector<std::string> refs;
  std::string id() const { return repo->cache_id(); }
};

struct Filter {
  std::string key, op, value;
  std::uint64_t bytes = 0;
  std::chrono::seconds age{0};
};

Filter parse_filter(const std::string& text) {
  static const std::regex re(R"(^\s*(size|accessed|modified|type|refs)\s*(>=|<=|!=|=|>|<)\s*(\S+)\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, re))
    throw Error(ErrorCode::invalid_argument,
                "Invalid filter '" + text +
                    "': expected KEY OP VALUE with KEY in size, accessed, modified, type, refs and OP in = != > < >= "
                    "<= (e.g. size>1G, accessed>30d, type=model, refs=main).");
  Filter f{m[1], m[2], m[3]};
  if ((f.key == "type" || f.key == "refs") && f.op != "=")
    throw Error(ErrorCode::invalid_argument, "Filter '" + text + "': only '=' is supported for " + f.key + ".");
  if (f.key == "type" && !parse_repo_type(f.value))
    throw Error(ErrorCode::invalid_argument, "Filter '" + text + "': type must be model, dataset or space.");
  if (f.key == "size") f.bytes = parse_size(f.value);
  if (f.key == "accessed" || f.key == "modified") f.age = parse_duration(f.value);
  return f;
}

template <typename T>
bool compare(const T& a, const std::string& op, const T& b) {
  if (op == "=") return a == b;
  if (op == "!=") return a != b;
  if (op == ">") return a > b;
  if (op == "<") return a < b;
  if (op == ">=") return a >= b;
  return a <= b;
}

bool matches(const Row& row, const Filter& f, TimePoint now) {
  if (f.key == "size") return compare(row.size, f.op, f.bytes);
  if (f.key == "type") return row.repo->type == *parse_repo_type(f.value);
  if (f.key == "refs") return std::find(row.refs.begin(), row.refs.end(), f.value) != row.refs.end();
  auto t = f.key == "accessed" ? row.accessed : row.modified;
  // "accessed>7d": last access more than 7 days ago; durations compare at second precision.
  auto age = std::chrono::duration_cast<std::chrono::seconds>(now - t);
  return compare(age, f.op, f.age);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

double epoch(TimePoint t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (std::size_t n = 0; n < rows.size(); ++n) {
    std::string line;
    for (std::size_t i = 0; i < rows[n].size(); ++i) {
      std::string cell = rows[n][i];
      if (i + 1 < rows[n].size()) cell.resize(width[i] + 2, ' ');
      line += cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
    if (n == 0) {
      std::string dash;
      for (std::size_t i = 0; i < width.size(); ++i)
        dash += std::string(width[i], '-') + (i + 1 < width.size() ? "  " : "");
      std::cout << dash << "\n";
    }
  }
}

int run(const LsArgs& args) {
  Options o;
  o.cache_dir = args.cache_dir;
  auto report = scan_cache(resolve_cache_root(o));
  auto now = Clock::now();
  std::vector<Filter> filters;
  for (const auto& f : args.filters) filters.push_back(parse_filter(f));

  std::vector<Row> rows;
  for (const auto& repo : report.repos) {
    if (args.revisions) {
      for (const auto& rev : repo.revisions)
        rows.push_back({&repo, &rev, rev.size, rev.last_accessed, rev.last_modified, rev.refs});
    } else {
      std::vector<std::string> refs;
      for (const auto& [ref, commit] : repo.refs) refs.push_back(ref);
      rows.push_back({&repo, nullptr, repo.size, repo.last_accessed, repo.last_modified, refs});
    }
  }
  std::erase_if(rows, [&](const Row& r) {
    return !std::all_of(filters.begin(), filters.end(), [&](const Filter& f) { return matches(r, f, now); });
  });

  std::string key = args.sort.empty() ? "name" : args.sort;
  std::string order;
  if (auto colon = key.find(':'); colon != std::string::npos) {
    order = key.substr(colon + 1);
    key = key.substr(0, colon);
  }
  if (key != "accessed" && key != "modified" && key != "name" && key != "size")
    throw Error(ErrorCode::invalid_argument, "Invalid --sort key '" + key + "': use accessed, modified, name or size.");
  if (!order.empty() && order != "asc" && order != "desc")
    throw Error(ErrorCode::invalid_argument, "Invalid --sort order '" + order + "': use asc or desc.");
  bool desc = order.empty() ? key != "name" : order == "desc";
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    auto less = [&](const Row& x, const Row& y) {
      if (key == "size") return x.size < y.size;
      if (key == "accessed") return x.accessed < y.accessed;
      if (key == "modified") return x.modified < y.modified;
      if (x.id() != y.id()) return x.id() < y.id();
      return x.rev && y.rev && x.rev->commit < y.rev->commit;
    };
    return desc ? less(b, a) : less(a, b);
  });
  if (args.limit >= 0 && rows.size() > static_cast<std::size_t>(args.limit))
    rows.resize(static_cast<std::size_t>(args.limit));

  if (args.format == "json") {
    auto out = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json j{{"id", r.id()},
                       {"repo_id", r.repo->repo_id},
                       {"repo_type", std::string(to_string(r.repo->type))},
                       {"size", r.size},
                       {"size_human", format_size(r.size)},
                       {"last_accessed", epoch(r.accessed)},
                       {"last_modified", epoch(r.modified)},
                       {"refs", r.refs},
                       {"repo_path", r.repo->path.string()}};
      if (r.rev) {
        j["revision"] = r.rev->commit;
        j["snapshot_path"] = r.rev->snapshot_path.string();
        j["nb_files"] = r.rev->files.size();
      } else {
        j["nb_files"] = r.repo->nb_files;
        j["nb_revisions"] = r.repo->revisions.size();
      }
      out.push_back(std::move(j));
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::vector<std::vector<std::string>> table;
    if (args.revisions)
      table.push_back({"ID", "REVISION", "SIZE", "LAST_MODIFIED", "REFS"});
    else
      table.push_back({"ID", "SIZE", "LAST_ACCESSED", "LAST_MODIFIED", "REFS"});
    for (const auto& r : rows) {
      if (args.revisions)
        table.push_back({r.id(), r.rev->commit, format_size(r.size), format_timesince(r.modified, now), join(r.refs)});
      else
        table.push_back({r.id(), format_size(r.size), format_timesince(r.accessed, now),
                         format_timesince(r.modified, now), join(r.refs)});
    }
    print_table(table);
    std::unordered_set<const CachedRepo*> repos;
    std::unordered_set<std::string> blobs;
    std::size_t nb_revisions = 0;
    std::uint64_t total = 0;
    for (const auto& r : rows) {
      repos.insert(r.repo);
      if (r.rev)
        ++nb_revisions;
      else
        nb_revisions += r.repo->revisions.size();
      const auto add = [&](const CachedRevision& rev) {
        for (const auto& f : rev.files)
          if (blobs.insert(f.blob_path.native()).second) total += f.size;
      };
      if (r.rev)
        add(*r.rev);
      else
        for (const auto& rev : r.repo->revisions) add(rev);
    }
    std::cout << "\nFound " << repos.size() << " repo(s) for a total of " << nb_revisions << " revision(s) and "
              << format_size(total) << " on disk.\n";
  }
  if (!report.warnings.empty()) {
    std::cerr << "Got " << report.warnings.size() << " warning(s) while scanning the cache (corrupted entries are "
              << "left out)." << (args.show_warnings ? "" : " Use --show-warnings to see them.") << "\n";
    if (args.show_warnings)
      for (const auto& w : report.warnings) std::cerr << "warning: " << w << "\n";
  }
  if (!report.incomplete.empty())
    std::cerr << "Found " << report.incomplete.size() << " incomplete download(s) ("
              << format_size(report.incomplete_size) << "). Run `"
              << util::shell_command(args.cache_dir.empty()
                                         ? std::vector<std::string>{"hubcache", "prune"}
                                         : std::vector<std::string>{"hubcache", "prune", "--cache-dir", args.cache_dir})
              << "` to remove those no download is still writing.\n";
  return 0;
}

Registrar reg{{"ls",
               "List the repos and revisions in the cache, with sizes and last use",
               40,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<LsArgs>();
                 sub.add_flag("--revisions", args->revisions, "One row per revision instead of per repo");
                 sub.add_option("-f,--filter", args->filters,
                                "Keep rows matching KEY OP VALUE (size>1G, accessed>30d, modified<2w, type=model, "
                                "refs=main); repeatable, all must match")
                     ->allow_extra_args(false);
                 sub.add_option("--sort", args->sort,
                                "accessed|modified|name|size[:asc|:desc] (default: name; desc except for name)");
                 sub.add_option("--limit", args->limit, "Show at most N rows")->check(CLI::NonNegativeNumber);
                 sub.add_option("--format", args->format, "table (default) or json")
                     ->check(CLI::IsMember({"table", "human", "json"}));
                 sub.add_option("--cache-dir", args->cache_dir, "Cache root (default: HF_HUB_CACHE, ...)");
                 sub.add_flag("--show-warnings", args->show_warnings, "Print every corrupted entry found");
                 return [args] { return run(*args); };
               },
               {"list"}}};

}  // namespace
}  // namespace hubcache::cli
