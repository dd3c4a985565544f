// IDX parsing: good files (plain and gzip), and every kind of bad file named in the error.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/idx.h"

namespace bb {
namespace {

std::string temp(const std::string& name) { return ::testing::TempDir() + "/vdata_" + name; }

std::string idx_bytes(uint8_t type, std::vector<uint32_t> dims, size_t data_bytes) {
  std::string s = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int k = 3; k >= 0; --k) s += static_cast<char>((d >> (8 * k)) & 0xFF);
  for (size_t i = 0; i < data_bytes; ++i) s += static_cast<char>(i % 251);
  return s;
}

std::string write_plain(const std::string& name, const std::string& bytes) {
  std::string p = temp(name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::string write_gzip(const std::string& name, const std::string& bytes) {
  std::string p = temp(name);
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  return p;
}

// The FormatError's message, or "" when none is thrown.
std::string error_of(const std::string& path) {
  try {
    read_idx(path);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(VisionIdx, ReadsPlainAndGzip) {
  const std::string bytes = idx_bytes(0x08, {3, 2, 4}, 24);
  for (const std::string& p : {write_plain("ok.idx", bytes), write_gzip("ok.idx.gz", bytes)}) {
    IdxArray a = read_idx(p);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{3, 2, 4}));
    ASSERT_EQ(a.data.size(), 24u);
    EXPECT_EQ(a.data[5], 5);
  }
}

TEST(VisionIdx, BadFilesNameTheFileAndTheFault) {
  struct Case {
    std::string name, bytes, expect;
  };
  const std::string good = idx_bytes(0x08, {4, 3}, 12);
  const std::vector<Case> cases = {
      {"badmagic.idx", std::string("\x01\x02\x08\x01", 4) + good.substr(4), "magic number"},
      {"type.idx", idx_bytes(0x0D, {4}, 16), "IDX type 0x0d"},
      {"ndim.idx", idx_bytes(0x08, {}, 0), "declares 0 dimensions"},
      {"short.idx", std::string("\0\0", 2), "too short"},
      {"header.idx", good.substr(0, 6), "ends inside its header"},
      {"size.idx", good.substr(0, good.size() - 1), "declare 12 bytes of data but the file holds 11"},
      {"long.idx", good + "x", "file holds 13"},
      {"zero.idx", idx_bytes(0x08, {4, 0}, 0), "dimension 1 is 0"},
  };
  for (const Case& c : cases) {
    const std::string p = write_plain(c.name, c.bytes);
    const std::string msg = error_of(p);
    EXPECT_NE(msg.find(p), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
  }
}

TEST(VisionIdx, TruncatedGzipIsAFormatError) {
  const std::string gz = write_gzip("full.idx.gz", idx_bytes(0x08, {64, 28, 28}, 64 * 784));
  std::ifstream in(gz, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), {});
  const std::string cut = write_plain("cut.idx.gz", all.substr(0, all.size() / 2));
  const std::string msg = error_of(cut);
  EXPECT_NE(msg.find(cut), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  // zlib's own reason, read before the stream is closed (it used to be read after it was freed).
  const std::string tail = "unexpected end of file";
  ASSERT_GE(msg.size(), tail.size()) << msg;
  EXPECT_EQ(msg.substr(msg.size() - tail.size()), tail) << msg;
  EXPECT_EQ(error_of(cut), msg) << "the message must not change between reads";
  EXPECT_NE(error_of(temp("missing.idx")).find("does not exist"), std::string::npos);
}

TEST(VisionIdx, FashionMnistChecksLabelsAgainstImages) {
  const std::string dir = ::testing::TempDir() + "/vdata_fm";
  std::filesystem::create_directories(dir);
  write_plain("fm/t10k-images-idx3-ubyte", idx_bytes(0x08, {5, 28, 28}, 5 * 784));
  std::string labels = idx_bytes(0x08, {4}, 0) + std::string("\x01\x02\x03\x04", 4);
  write_plain("fm/t10k-labels-idx1-ubyte", labels);
  try {
    load_fashion_mnist(dir, "t10k");
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("holds 4 labels but"), std::string::npos) << e.what();
  }
  write_plain("fm/t10k-labels-idx1-ubyte", idx_bytes(0x08, {5}, 0) + std::string("\x01\x02\x03\x04\x0c", 5));
  try {
    load_fashion_mnist(dir, "t10k");
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("label 12 of sample 4"), std::string::npos) << e.what();
  }
  write_plain("fm/t10k-labels-idx1-ubyte", idx_bytes(0x08, {5}, 0) + std::string("\x01\x02\x03\x04\x09", 5));
  ImageSet s = load_fashion_mnist(dir, "t10k");
  EXPECT_EQ(s.count, 5);
  EXPECT_EQ(s.height, 28);
  EXPECT_EQ(s.channels, 1);
  EXPECT_EQ(s.labels[4], 9);
}

}  // namespace
}  // namespace bb
