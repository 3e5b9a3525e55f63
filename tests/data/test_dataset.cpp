// data_dataset: ImageFolder order/filters/bad files as torchvision's ImageFolder, and the list file.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include "engine/error.h"
#include "io/data/dataset.h"
#include "io/image/decode.h"
#include "tests/data/tree_util.h"

using namespace rtune;
using namespace rtune::io;
namespace fs = std::filesystem;

namespace {
std::vector<std::string> rel_paths(const Dataset& ds) {
  std::vector<std::string> out;
  for (const Sample& s : ds.samples) out.push_back(fs::relative(s.path, ds.root).generic_string() + ":" + std::to_string(s.label));
  return out;
}
}  // namespace

TEST_CASE("ImageFolder: sorted classes, os.walk order, torchvision's extension list") {
  test::TempTree t("imagefolder");
  t.put("cat/b.png", "rgb.png");
  t.put("cat/a.JPG", "rgb420.jpg");           // extension match is case-insensitive
  t.put("cat/z/inner.bmp", "rgb.bmp");        // nested folders are walked
  t.put("cat/c.gif", "palette.gif");          // .gif is not in IMG_EXTENSIONS: ignored
  t.write("cat/readme.txt", "not an image");  // ignored by extension, not a bad file
  t.put("Dog/x.jpeg", "gray.jpg");            // 'D' < 'c': Python's code-point sort
  t.put("cat_2/y.png", "gray.png");           // "cat/z" vs "cat_2" are different classes
  t.put("cat/y.ppm", "rgb.png");              // listed extension, PNG content: decoded by magic bytes
  std::vector<std::string> warnings;
  ScanOptions opt;
  opt.warn = [&](const std::string& w) { warnings.push_back(w); };
  Dataset ds = image_folder(t.root, opt);
  CHECK(ds.classes == std::vector<std::string>{"Dog", "cat", "cat_2"});
  CHECK(rel_paths(ds) == std::vector<std::string>{"Dog/x.jpeg:0", "cat/a.JPG:1", "cat/b.png:1", "cat/y.ppm:1",
                                                  "cat/z/inner.bmp:1", "cat_2/y.png:2"});
  CHECK(ds.skipped == 0);
  CHECK(warnings.empty());
  CHECK(ds.num_classes() == 3);
}

TEST_CASE("ImageFolder: bad files skipped with a warning naming them, or an error when strict") {
  test::TempTree t("badfiles");
  t.put({{"a/good.png", "rgb.png"}, {"a/empty.jpg", "empty.jpg"}, {"a/text.png", "notes.txt"},
         {"a/webp_is_listed.webp", "notes.txt"}, {"b/good.jpg", "rgb444.jpg"}, {"b/garbage.jpg", "garbage.jpg"}});
  std::vector<std::string> warnings;
  ScanOptions opt;
  opt.warn = [&](const std::string& w) { warnings.push_back(w); };
  Dataset ds = image_folder(t.root, opt);
  CHECK(rel_paths(ds) == std::vector<std::string>{"a/good.png:0", "b/good.jpg:1"});
  CHECK(ds.skipped == 4);
  REQUIRE(warnings.size() == 5);  // one per file + the summary
  CHECK(warnings[0].find("empty.jpg") != std::string::npos);
  CHECK(warnings[0].find("empty file") != std::string::npos);
  CHECK(warnings[1].find("text.png") != std::string::npos);
  CHECK(warnings[1].find("not a supported image") != std::string::npos);
  CHECK(warnings[3].find("garbage.jpg") != std::string::npos);
  CHECK(warnings[3].find("corrupt JPEG header") != std::string::npos);
  CHECK(warnings[4].find("skipped 4 bad file(s), kept 2") != std::string::npos);

  opt.strict = true;
  try {
    image_folder(t.root, opt);
    FAIL("strict scan should throw");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("empty.jpg") != std::string::npos);
  }
}

TEST_CASE("ImageFolder: .webp and .tif files are images (torchvision's extension list), decoded as Pillow does") {
  test::TempTree t("webp");
  t.put({{"a/one.png", "rgb.png"}, {"b/two.webp", "../webp/rgba_lossy.webp"},
         {"c/three.tif", "../tiff/rgb_lzw.tif"}});
  Dataset ds = image_folder(t.root);
  CHECK(ds.skipped == 0);
  REQUIRE(ds.samples.size() == 3);
  CHECK(ds.samples[1].label == 1);
  CHECK(decode_image(ds.samples[1].path).width == 37);
  CHECK(ds.samples[2].label == 2);
  CHECK(decode_image(ds.samples[2].path).width == 31);
}

TEST_CASE("ImageFolder: a FIFO named like an image is skipped with a warning, not waited on forever") {
  test::TempTree t("fifo");
  t.put("a/good.png", "rgb.png");
  REQUIRE(::mkfifo((t.root / "a" / "stream.jpg").c_str(), 0600) == 0);
  std::vector<std::string> warnings;
  ScanOptions opt;
  opt.warn = [&](const std::string& w) { warnings.push_back(w); };
  Dataset ds = image_folder(t.root, opt);
  CHECK(ds.samples.size() == 1);
  CHECK(ds.skipped == 1);
  REQUIRE(!warnings.empty());
  CHECK(warnings[0].find("stream.jpg") != std::string::npos);
  CHECK(warnings[0].find("not a regular file") != std::string::npos);
}

TEST_CASE("ImageFolder: a class with no valid file, or no class at all, is an error") {
  test::TempTree t("emptyclass");
  t.put("a/good.png", "rgb.png");
  t.write("b/notes.txt", "x");
  CHECK_THROWS_WITH_AS(image_folder(t.root), doctest::Contains("found no valid file for the classes b"), Error);
  test::TempTree e("noclass");
  CHECK_THROWS_WITH_AS(image_folder(e.root), doctest::Contains("couldn't find any class folder"), Error);
  CHECK_THROWS_WITH_AS(image_folder(e.root / "missing"), doctest::Contains("not a directory"), Error);
}

TEST_CASE("list file: paths with spaces, comments, labels; bad lines are errors naming file:line") {
  test::TempTree t("listfile");
  t.put("imgs/one.png", "rgb.png");
  t.put("imgs/two words.jpg", "rgb420.jpg");
  auto list = t.write("train.txt", "# path label\nimgs/one.png 3\n\n  imgs/two words.jpg\t7  \r\nimgs/missing.png 1\n");
  std::vector<std::string> warnings;
  ScanOptions opt;
  opt.warn = [&](const std::string& w) { warnings.push_back(w); };
  Dataset ds = list_file_dataset(list, t.root, opt);
  CHECK(rel_paths(ds) == std::vector<std::string>{"imgs/one.png:3", "imgs/two words.jpg:7"});
  CHECK(ds.num_classes() == 8);
  CHECK(ds.skipped == 1);
  REQUIRE(!warnings.empty());
  CHECK(warnings[0].find("missing.png") != std::string::npos);
  CHECK(warnings[0].find("no such file") != std::string::npos);
  opt.strict = true;
  CHECK_THROWS_WITH_AS(list_file_dataset(list, t.root, opt), doctest::Contains("missing.png"), Error);

  auto bad = t.write("bad.txt", "imgs/one.png 3\nimgs/one.png x1\n");
  CHECK_THROWS_WITH_AS(list_file_dataset(bad, t.root), doctest::Contains("bad.txt:2: label 'x1'"), Error);
  auto nolabel = t.write("nolabel.txt", "imgs/one.png\n");
  CHECK_THROWS_WITH_AS(list_file_dataset(nolabel, t.root), doctest::Contains("nolabel.txt:1: expected"), Error);
}
