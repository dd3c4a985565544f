// Image folders: PNG and JPEG decoding, class order, and the errors for wrong sizes,
// channel counts, unreadable images and empty class folders.
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "data/image_folder.h"

namespace bb {
namespace {
namespace fs = std::filesystem;

// A fresh folder under the test temp dir.
std::string fresh(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/vdata_if_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_png(const std::string& path, int w, int h, int c, uint8_t base) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * c);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(base + i);
  ASSERT_TRUE(stbi_write_png(path.c_str(), w, h, c, px.data(), w * c));
}

std::string error_of(const std::string& dir) {
  try {
    load_image_folder(dir);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(VisionImageFolder, LoadsClassesInSortedOrder) {
  const std::string d = fresh("ok");
  write_png(d + "/cat/a.png", 4, 3, 3, 10);
  write_png(d + "/cat/b.png", 4, 3, 3, 20);
  write_png(d + "/ant/x.png", 4, 3, 3, 30);
  std::vector<uint8_t> jpg(4 * 3 * 3, 128);
  ASSERT_TRUE(stbi_write_jpg((d + "/ant/y.jpg").c_str(), 4, 3, 3, jpg.data(), 95));
  std::ofstream(d + "/ant/notes.txt") << "not an image, skipped";
  ImageSet s = load_image_folder(d);
  EXPECT_EQ(s.classes, (std::vector<std::string>{"ant", "cat"}));
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.width, 4);
  EXPECT_EQ(s.height, 3);
  EXPECT_EQ(s.channels, 3);
  EXPECT_EQ(s.labels, (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(s.pixels[0], 30);                 // ant/x.png, first byte (PNG is lossless)
  EXPECT_NEAR(s.pixels[36 + 5], 128, 3);     // ant/y.jpg (JPEG: close)
  EXPECT_EQ(s.pixels[2 * 36 + 1], 11);        // cat/a.png, second byte
}

TEST(VisionImageFolder, WrongSizeOrChannelsNamesTheFile) {
  std::string d = fresh("size");
  write_png(d + "/a/1.png", 4, 4, 1, 0);
  write_png(d + "/b/2.png", 5, 4, 1, 0);
  std::string msg = error_of(d);
  EXPECT_NE(msg.find(d + "/b/2.png is 5x4"), std::string::npos) << msg;

  d = fresh("channels");
  write_png(d + "/a/1.png", 4, 4, 1, 0);
  write_png(d + "/a/2.png", 4, 4, 3, 0);
  msg = error_of(d);
  EXPECT_NE(msg.find(d + "/a/2.png has 3 channels"), std::string::npos) << msg;

  d = fresh("fixed");
  write_png(d + "/a/1.png", 4, 4, 1, 0);
  try {
    load_image_folder(d, ImageFolderOptions{.height = 28, .width = 28, .channels = 1});
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("1.png is 4x4 but the images of this set are 28x28"), std::string::npos)
        << e.what();
  }
}

TEST(VisionImageFolder, UnreadableImageAndEmptyFoldersAreErrors) {
  std::string d = fresh("corrupt");
  write_png(d + "/a/1.png", 4, 4, 1, 0);
  std::ofstream(d + "/a/2.png") << "this is not a PNG";
  std::string msg = error_of(d);
  EXPECT_NE(msg.find(d + "/a/2.png cannot be read as an image"), std::string::npos) << msg;

  d = fresh("emptyclass");
  write_png(d + "/a/1.png", 4, 4, 1, 0);
  fs::create_directories(d + "/b");
  msg = error_of(d);
  EXPECT_NE(msg.find("class folder " + d + "/b holds no PNG or JPEG images"), std::string::npos) << msg;

  d = fresh("noclasses");
  msg = error_of(d);
  EXPECT_NE(msg.find(d + " holds no class folders"), std::string::npos) << msg;
  EXPECT_NE(error_of(d + "/missing").find("is not a folder"), std::string::npos);
}

}  // namespace
}  // namespace bb
