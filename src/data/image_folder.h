// A folder of PNG or JPEG images laid out one sub-folder per class (the torchvision
// ImageFolder layout), decoded with stb_image into an ImageSet. Classes are the sub-folder
// names in sorted order; every image must share one size and channel count.
#pragma once
#include <string>

#include "data/image_dataset.h"

namespace bb {

struct ImageFolderOptions {
  int64_t height = 0, width = 0, channels = 0;  // 0: taken from the first image
  std::vector<std::string> classes = {};       // expected class names (a test folder must match the train one)
};

// Throws FormatError naming the file for an unreadable image, one of the wrong size or
// channel count, a class folder without images, or a folder without class folders.
ImageSet load_image_folder(const std::string& dir, const ImageFolderOptions& o = {});

}  // namespace bb
