// rtune: fine-tune torchvision ResNets on a folder of images, natively. One binary, subcommands.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <new>
#include <system_error>
#include <string>
#include <vector>
#include <fmt/format.h>
#include "engine/error.h"
#include "engine/printable.h"
#include "kernels/dist/comm.h"
#include "tools/commands.h"

namespace {

// The last line of defence: an exception that escapes a thread, a destructor or a noexcept function
// ends the process through std::terminate. Say so in one line (the default handler prints
// "terminate called ..." and aborts with a core dump) and exit with the internal-error code.
[[noreturn]] void on_terminate() noexcept {
  const char* what = "no active exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "rtune: error: out of memory; lower the sizes asked for (--batch, --threads, image sizes)\n");
      std::_Exit(1);
    } catch (const std::exception& x) {
      std::fprintf(stderr, "rtune: internal error: %s\n", x.what());
      std::_Exit(3);
    } catch (...) {
      what = "an exception of unknown type";
    }
  }
  std::fprintf(stderr, "rtune: internal error: terminated (%s)\n", what);
  std::_Exit(3);
}

// Edit distance with adjacent transpositions (optimal string alignment): "trian" is 1 from "train".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The candidate nearest to `word`, if near enough to be a typo of it (1 edit per 3 letters, at most 3).
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  const size_t letters = word.size() - std::min(word.find_first_not_of('-'), word.size());
  const size_t limit = std::clamp<size_t>(letters / 3, 1, 3);
  std::string best;
  size_t best_d = limit + 1;
  for (const auto& c : candidates)
    if (size_t dist = edit_distance(word, c); dist < best_d) best = c, best_d = dist;
  return best;
}

// "did you mean" for a mistyped subcommand or --flag of the chosen subcommand ("" when none fits).
std::string did_you_mean(CLI::App& app, int argc, char** argv) {
  int i = 1;
  while (i < argc && argv[i][0] == '-') ++i;
  if (i == argc) return {};
  const std::string word = argv[i];
  CLI::App* sub = nullptr;
  std::vector<std::string> commands;
  for (CLI::App* c : app.get_subcommands([](CLI::App*) { return true; })) {
    commands.push_back(c->get_name());
    if (c->get_name() == word) sub = c;
  }
  if (!sub) {
    const std::string best = closest(word, commands);
    return best.empty() ? "" : fmt::format("rtune: '{}' is not a command; did you mean '{}'?", rtune::printable(word), best);
  }
  std::vector<std::string> flags;
  for (const CLI::Option* o : sub->get_options())
    for (const auto& n : o->get_lnames()) flags.push_back("--" + n);
  for (int j = i + 1; j < argc; ++j) {
    std::string a = argv[j];
    if (a.size() < 3 || a.rfind("--", 0) != 0) continue;
    a = a.substr(0, a.find('='));
    if (std::find(flags.begin(), flags.end(), a) != flags.end()) continue;
    const std::string best = closest(a, flags);
    if (!best.empty())
      return fmt::format("rtune {}: unknown option '{}'; did you mean '{}'?", word, rtune::printable(a), best);
  }
  return {};
}

// The job's end: every rank of a data-parallel run finalizes MPI together; a rank that fails takes the
// others down with it (MPI_Abort) rather than leaving them waiting in their next all-reduce.
int finish(int rc) {
  if (rc == 0) rtune::dist::finalize();
  else rtune::dist::abort_job(rc);
  return rc;
}

// "rtune", or "rtune (rank 1 of 2)" under a launcher: the rank that failed is named in its message.
std::string who() {
  const int n = rtune::dist::launched_ranks();
  return n > 1 ? fmt::format("rtune (rank {} of {})", rtune::dist::launched_rank(), n) : std::string("rtune");
}

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(on_terminate);
  CLI::App app{"rtune " RTUNE_VERSION ": fine-tune ResNets on a folder of images (CPU or NVIDIA GPU)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("rtune ") + RTUNE_VERSION);
  rtune::tools::register_convert(app);
  rtune::tools::register_summary(app);
  rtune::tools::register_train(app);
  rtune::tools::register_eval(app);
  rtune::tools::register_predict(app);
  rtune::tools::register_demo(app);
  rtune::tools::register_bench(app);
  const std::string me = who();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // usage errors: message + exit code 106/109…, never a crash
    if (const std::string hint = did_you_mean(app, argc, argv); !hint.empty()) std::fprintf(stderr, "%s\n", hint.c_str());
    return finish(rc);
  } catch (const rtune::InvalidArgument& e) {
    // A setting the run's config validation refused: a usage error like CLI11's own checks.
    std::fprintf(stderr, "%s: error: %s\n", me.c_str(), e.what());
    return finish(int(CLI::ExitCodes::ValidationError));
  } catch (const rtune::Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", me.c_str(), e.what());
    return finish(1);
  } catch (const std::bad_alloc&) {
    // The commands name the size that did not fit where they can; this is what is left.
    std::fprintf(stderr, "%s: error: out of memory; lower the sizes asked for (--batch, --width, image sizes)\n", me.c_str());
    return finish(1);
  } catch (const std::filesystem::filesystem_error& e) {
    // The file system refused (permissions, a read-only mount, a loop of links): the user's to fix.
    std::fprintf(stderr, "%s: error: %s\n", me.c_str(), e.what());
    return finish(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", me.c_str(), e.what());
    return finish(3);
  }
  return finish(0);
}
