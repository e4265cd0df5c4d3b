// The .cor header slot: encode/decode round trip and what decoding refuses.

#include "overlay/overlay_header.h"

#include <gtest/gtest.h>

namespace corfs::overlay {
namespace {

OverlayHeader SampleHeader() {
  OverlayHeader header;
  header.sequence = 7;
  header.virtual_size = (uint64_t{10} << 30) + 12345;
  header.cluster_bits = 16;
  header.standalone = false;
  header.chain.push_back({{"../templates/top.raw", "raw"}, {123456789, 0x0123456789abcdefULL}});
  header.chain.push_back({{"/var/lib/images/base image.qcow2", "qcow2"}, {uint64_t{10} << 30, 0xfedcba9876543210ULL}});
  return header;
}

void ExpectSameHeader(const OverlayHeader& a, const OverlayHeader& b) {
  EXPECT_EQ(a.sequence, b.sequence);
  EXPECT_EQ(a.virtual_size, b.virtual_size);
  EXPECT_EQ(a.cluster_bits, b.cluster_bits);
  EXPECT_EQ(a.standalone, b.standalone);
  EXPECT_EQ(a.chain, b.chain);
}

TEST(OverlayHeader, RoundTrip) {
  const OverlayHeader header = SampleHeader();
  std::string slot;
  ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
  EXPECT_EQ(slot.size(), kHeaderSlotSize);
  EXPECT_EQ(slot.substr(0, 8), "CORFSHDR");
  OverlayHeader decoded;
  Status status = DecodeHeaderSlot(slot, &decoded);
  ASSERT_TRUE(status.ok()) << status.message();
  ExpectSameHeader(decoded, header);
  EXPECT_EQ(decoded.cluster_size(), 65536u);
  EXPECT_EQ(decoded.cluster_count(), ((uint64_t{10} << 30) + 12345 + 65535) / 65536);
}

TEST(OverlayHeader, RoundTripStandaloneAndClusterSizeLimits) {
  for (uint32_t bits : {kMinClusterBits, kMaxClusterBits}) {
    OverlayHeader header;
    header.sequence = 1;
    header.virtual_size = 4096;
    header.cluster_bits = bits;
    header.standalone = true;
    std::string slot;
    ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
    OverlayHeader decoded;
    ASSERT_TRUE(DecodeHeaderSlot(slot, &decoded).ok());
    ExpectSameHeader(decoded, header);
    EXPECT_EQ(decoded.cluster_count(), 1u);
    EXPECT_EQ(decoded.bitmap_bytes(), kBitmapPageSize);
    EXPECT_EQ(decoded.metadata_file_size(), kBitmapOffset + kBitmapPageSize);
  }
}

TEST(OverlayHeader, BitmapBytesArePageRounded) {
  OverlayHeader header;
  header.cluster_bits = 12;
  header.virtual_size = uint64_t{4096} * 4096 * 8 + 1;  // one cluster more than a page of bits holds
  EXPECT_EQ(header.cluster_count(), uint64_t{4096} * 8 + 1);
  EXPECT_EQ(header.bitmap_bytes(), 2 * kBitmapPageSize);
}

TEST(OverlayHeader, ValidateRefusesOutOfRangeFields) {
  auto invalid = [](auto change) {
    OverlayHeader header = SampleHeader();
    change(header);
    std::string slot;
    Status encoded = EncodeHeaderSlot(header, &slot);
    EXPECT_FALSE(encoded.ok());
    EXPECT_FALSE(header.Validate().ok());
    return encoded.message();
  };
  invalid([](OverlayHeader& h) { h.cluster_bits = 11; });
  invalid([](OverlayHeader& h) { h.cluster_bits = 22; });
  invalid([](OverlayHeader& h) { h.virtual_size = 0; });
  invalid([](OverlayHeader& h) { h.standalone = true; });  // with a chain
  invalid([](OverlayHeader& h) { h.chain[0].spec.path.clear(); });
  invalid([](OverlayHeader& h) { h.chain[0].spec.format.clear(); });
  invalid([](OverlayHeader& h) { h.chain.resize(kMaxChainLength + 1, h.chain[0]); });
  invalid([](OverlayHeader& h) { h.chain[1].spec.path = std::string("a\0b", 3); });
  // Paths each valid but too long to fit a slot together: encoding refuses.
  OverlayHeader header = SampleHeader();
  header.chain.assign(kMaxChainLength, BackingImage{{std::string(4000, 'p'), "raw"}, {1, 2}});
  EXPECT_TRUE(header.Validate().ok());
  std::string slot;
  Status encoded = EncodeHeaderSlot(header, &slot);
  EXPECT_FALSE(encoded.ok());
  EXPECT_NE(encoded.message().find("too long"), std::string::npos) << encoded.message();
}

TEST(OverlayHeader, DecodeRefusesDamage) {
  std::string slot;
  ASSERT_TRUE(EncodeHeaderSlot(SampleHeader(), &slot).ok());
  OverlayHeader decoded;

  std::string bad = slot;
  bad[0] = 'X';
  Status status = DecodeHeaderSlot(bad, &decoded);
  EXPECT_EQ(status.code(), EUCLEAN);
  EXPECT_NE(status.message().find("magic"), std::string::npos) << status.message();

  bad = slot;
  bad[40] ^= 1;  // inside the payload
  status = DecodeHeaderSlot(bad, &decoded);
  EXPECT_EQ(status.code(), EUCLEAN);
  EXPECT_NE(status.message().find("checksum"), std::string::npos) << status.message();

  bad = slot;
  bad[8] = 2;  // version: covered by the checksum too
  EXPECT_FALSE(DecodeHeaderSlot(bad, &decoded).ok());

  bad = slot;
  bad[12] = static_cast<char>(0xff);  // payload length past the slot
  bad[13] = static_cast<char>(0xff);
  bad[14] = static_cast<char>(0xff);
  status = DecodeHeaderSlot(bad, &decoded);
  EXPECT_FALSE(status.ok());

  // Bytes after the payload are not covered and do not matter.
  bad = slot;
  bad[kHeaderSlotSize - 1] = 'z';
  EXPECT_TRUE(DecodeHeaderSlot(bad, &decoded).ok());

  EXPECT_FALSE(DecodeHeaderSlot(slot.substr(0, 10), &decoded).ok());
  EXPECT_FALSE(DecodeHeaderSlot(std::string(kHeaderSlotSize, '\0'), &decoded).ok());
}

}  // namespace
}  // namespace corfs::overlay
