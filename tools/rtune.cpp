// rtune: fine-tune torchvision ResNets on a folder of images, natively. One binary, subcommands.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <new>
#include <system_error>
#include "engine/error.h"
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // usage errors: message + exit code 106/109…, never a crash
  } catch (const rtune::Error& e) {
    std::fprintf(stderr, "rtune: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    // The commands name the size that did not fit where they can; this is what is left.
    std::fprintf(stderr, "rtune: error: out of memory; lower the sizes asked for (--batch, --width, image sizes)\n");
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // The file system refused (permissions, a read-only mount, a loop of links): the user's to fix.
    std::fprintf(stderr, "rtune: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rtune: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
