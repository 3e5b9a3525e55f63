// rtune: fine-tune torchvision ResNets on a folder of images, natively. One binary, subcommands.
#include <cstdio>
#include <exception>
#include "engine/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rtune: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
