// The .cor header slot: encode/decode round trip and what decoding refuses.

#include "overlay/overlay_header.h"

#include <gtest/gtest.h>

#include <xxhash.h>

#include <cstring>

namespace corfs::overlay {
namespace {

OverlayHeader SampleHeader() {
  OverlayHeader header;
  header.sequence = 7;
  header.virtual_size = (uint64_t{10} << 30) + 12345;
  header.cluster_bits = 16;
  header.standalone = false;
  ImageIdentity top{123456789, 0x0123456789abcdefULL, std::nullopt, std::nullopt, ""};
  top.stamp = FileStamp{0xfd01, 1234567, 1'700'000'000'123'456'789};
  top.content = ContentHash{0x1111222233334444ULL, 0x5555666677778888ULL};
  ImageIdentity base{uint64_t{10} << 30, 0xfedcba9876543210ULL, std::nullopt, std::nullopt, ""};
  base.stamp = FileStamp{0x802, 99, -5};  // before the epoch: a signed field
  header.chain.push_back({{"../templates/top.raw", "raw"}, top});
  header.chain.push_back({{"/var/lib/images/base image.qcow2", "qcow2"}, base});
  return header;
}

// Slot 0 of tests/fixtures/overlay_v1.tar.xz, as `corfs create` wrote it
// before version 2 existed: a 2 MiB disk, 64 KiB clusters, over
// template.raw (raw, 2 MiB, fingerprint 193e298eb06ec0fd).
const std::string_view kVersion1Slot(
    "\x43\x4f\x52\x46\x53\x48\x44\x52\x01\x00\x00\x00\x3f\x00\x00\x00\x8d\x3c\x4a\xfb\xe4\xe5\x90\x96"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00"
    "\x01\x00\x00\x00\x0c\x00\x74\x65\x6d\x70\x6c\x61\x74\x65\x2e\x72\x61\x77\x03\x00\x72\x61\x77\x00"
    "\x00\x20\x00\x00\x00\x00\x00\xfd\xc0\x6e\xb0\x8e\x29\x3e\x19",
    87);

// Recomputes a slot's checksum after a test changed its version, length or
// payload, so decoding looks past the checksum at the fields themselves.
void Reseal(std::string* slot) {
  uint32_t length = 0;
  std::memcpy(&length, slot->data() + 12, 4);
  std::string summed = slot->substr(8, 8) + slot->substr(24, length);
  const uint64_t checksum = XXH3_64bits(summed.data(), summed.size());
  std::memcpy(slot->data() + 16, &checksum, 8);
}

// Offset in a slot of the version 2 fields of the first backing image.
size_t FirstImageVersion2Offset(const OverlayHeader& header) {
  const BackingImage& image = header.chain.front();
  return 24 + 8 + 8 + 4 + 4 + 4 + 2 + image.spec.path.size() + 2 + image.spec.format.size() + 8 + 8;
}

void ExpectSameHeader(const OverlayHeader& a, const OverlayHeader& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.sequence, b.sequence);
  EXPECT_EQ(a.virtual_size, b.virtual_size);
  EXPECT_EQ(a.cluster_bits, b.cluster_bits);
  EXPECT_EQ(a.standalone, b.standalone);
  EXPECT_EQ(a.chain, b.chain);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.stream_wish, b.stream_wish);
  EXPECT_EQ(a.partial_data_file, b.partial_data_file);
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
  EXPECT_EQ(decoded.version, kLatestHeaderVersion);
  EXPECT_EQ(slot[8], 4);  // overlays are made in the latest version
  ASSERT_TRUE(decoded.chain[0].identity.stamp && decoded.chain[0].identity.content);
  EXPECT_EQ(decoded.chain[1].identity.stamp->mtime_ns, -5);
  EXPECT_FALSE(decoded.chain[1].identity.content);
  EXPECT_EQ(decoded.cluster_size(), 65536u);
  EXPECT_EQ(decoded.cluster_count(), ((uint64_t{10} << 30) + 12345 + 65535) / 65536);
}

TEST(OverlayHeader, AUriIsReadWithoutItsUserInformation) {
  OverlayHeader header = SampleHeader();
  header.chain[0].spec.path = "http://user:secret@127.0.0.1/t.raw";  // as a hand-edited header might hold
  std::string slot;
  ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
  OverlayHeader decoded;
  ASSERT_TRUE(DecodeHeaderSlot(slot, &decoded).ok());
  EXPECT_EQ(decoded.chain[0].spec.path, "http://127.0.0.1/t.raw");
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
  invalid([](OverlayHeader& h) { h.version = 0; });
  invalid([](OverlayHeader& h) { h.version = kLatestHeaderVersion + 1; });
  EXPECT_NE(invalid([](OverlayHeader& h) { h.version = 1; }).find("version 1"), std::string::npos);
  // Paths each valid but too long to fit a slot together: encoding refuses.
  OverlayHeader header = SampleHeader();
  header.chain.assign(kMaxChainLength,
                      BackingImage{{std::string(4000, 'p'), "raw"}, {1, 2, std::nullopt, std::nullopt, ""}});
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
  bad[8] = 1;  // version: covered by the checksum too
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

TEST(OverlayHeader, ReadsAVersion1SlotWrittenBeforeVersion2) {
  std::string slot(kVersion1Slot);
  slot.resize(kHeaderSlotSize, '\0');
  OverlayHeader decoded;
  Status status = DecodeHeaderSlot(slot, &decoded);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(decoded.version, 1u);
  EXPECT_EQ(decoded.sequence, 0u);
  EXPECT_EQ(decoded.virtual_size, 2u << 20);
  EXPECT_EQ(decoded.cluster_bits, 16u);
  EXPECT_FALSE(decoded.standalone);
  ASSERT_EQ(decoded.chain.size(), 1u);
  EXPECT_EQ(decoded.chain[0].spec.path, "template.raw");
  EXPECT_EQ(decoded.chain[0].spec.format, "raw");
  EXPECT_EQ(decoded.chain[0].identity.size, 2u << 20);
  EXPECT_EQ(decoded.chain[0].identity.fingerprint, 0x193e298eb06ec0fdULL);
  EXPECT_FALSE(decoded.chain[0].identity.stamp);
  EXPECT_FALSE(decoded.chain[0].identity.content);

  // A header read as version 1 is written as version 1, byte for byte as the
  // older corfs wrote it, so that corfs can still open the overlay.
  std::string encoded;
  ASSERT_TRUE(EncodeHeaderSlot(decoded, &encoded).ok());
  EXPECT_EQ(encoded, slot);
  decoded.sequence = 1;
  decoded.standalone = true;
  decoded.chain.clear();
  ASSERT_TRUE(EncodeHeaderSlot(decoded, &encoded).ok());
  EXPECT_EQ(encoded[8], 1);
  OverlayHeader again;
  ASSERT_TRUE(DecodeHeaderSlot(encoded, &again).ok());
  ExpectSameHeader(again, decoded);
}

TEST(OverlayHeader, Version2RoundTripWithoutStampOrContentHash) {
  OverlayHeader header = SampleHeader();
  header.version = 2;
  for (BackingImage& image : header.chain) {
    image.identity.stamp.reset();
    image.identity.content.reset();
  }
  std::string slot;
  ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
  OverlayHeader decoded;
  ASSERT_TRUE(DecodeHeaderSlot(slot, &decoded).ok());
  ExpectSameHeader(decoded, header);
  EXPECT_EQ(decoded.version, 2u);
}

TEST(OverlayHeader, DecodeRefusesDamagedVersion2Fields) {
  const OverlayHeader header = [] {
    OverlayHeader h = SampleHeader();
    h.version = 2;
    return h;
  }();
  std::string slot;
  ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
  const size_t fields = FirstImageVersion2Offset(header);
  OverlayHeader decoded;
  auto refused = [&](const std::string& bad) {
    Status status = DecodeHeaderSlot(bad, &decoded);
    EXPECT_EQ(status.code(), EUCLEAN) << status.message();
    return status.message();
  };
  auto has = [](const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; };

  std::string bad = slot;  // a flag this corfs does not know
  bad[fields] = static_cast<char>(bad[fields] | 4);
  Reseal(&bad);
  std::string message = refused(bad);
  EXPECT_TRUE(has(message, "unknown backing image flags")) << message;
  EXPECT_TRUE(has(message, "backing image 1")) << message;

  bad = slot;  // the stamp's flag cleared, its fields left
  bad[fields] = static_cast<char>(bad[fields] & ~1);
  Reseal(&bad);
  message = refused(bad);
  EXPECT_TRUE(has(message, "file stamp")) << message;

  bad = slot;  // the content hash's flag cleared, its fields left
  bad[fields] = static_cast<char>(bad[fields] & ~2);
  Reseal(&bad);
  message = refused(bad);
  EXPECT_TRUE(has(message, "content hash")) << message;

  bad = slot;  // the last image's version 2 fields cut short
  uint32_t length = 0;
  std::memcpy(&length, bad.data() + 12, 4);
  length -= 8;
  std::memcpy(bad.data() + 12, &length, 4);
  Reseal(&bad);
  message = refused(bad);
  EXPECT_TRUE(has(message, "do not match their length")) << message;

  bad = slot;  // a version 2 payload labelled version 1: fields left over
  bad[8] = 1;
  Reseal(&bad);
  message = refused(bad);
  EXPECT_TRUE(has(message, "do not match their length")) << message;

  std::string v1(kVersion1Slot);  // a version 1 payload labelled version 2: fields missing
  v1.resize(kHeaderSlotSize, '\0');
  v1[8] = 2;
  Reseal(&v1);
  message = refused(v1);
  EXPECT_TRUE(has(message, "do not match their length")) << message;

  bad = slot;  // a version from a newer corfs, with a valid checksum
  bad[8] = static_cast<char>(kLatestHeaderVersion + 1);
  Reseal(&bad);
  message = refused(bad);
  EXPECT_TRUE(has(message, "unsupported header version " + std::to_string(kLatestHeaderVersion + 1))) << message;
}

TEST(OverlayHeader, Version3RoundTripOfOwnerModeStreamWishAndPartialDataFile) {
  OverlayHeader header = SampleHeader();
  header.owner = FileOwner{64055, 64056};
  header.mode = 0600;
  header.stream_wish = StreamWish{2 << 20, "stop"};
  header.partial_data_file = true;
  std::string slot;
  ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
  OverlayHeader decoded;
  Status status = DecodeHeaderSlot(slot, &decoded);
  ASSERT_TRUE(status.ok()) << status.message();
  ExpectSameHeader(decoded, header);
  EXPECT_EQ(decoded, header);

  // Each part on its own, and none: an absent part decodes as absent.
  for (int part = 0; part < 5; ++part) {
    OverlayHeader one = SampleHeader();
    if (part == 0) one.owner = FileOwner{0, 0};  // root is an owner, not "unset"
    if (part == 1) one.mode = 0;
    if (part == 2) one.stream_wish = StreamWish{};
    if (part == 3) one.partial_data_file = true;
    ASSERT_TRUE(EncodeHeaderSlot(one, &slot).ok());
    ASSERT_TRUE(DecodeHeaderSlot(slot, &decoded).ok());
    EXPECT_EQ(decoded, one) << "part " << part;
  }
}

TEST(OverlayHeader, OlderVersionsCannotRecordVersion3Parts) {
  for (int part = 0; part < 4; ++part) {
    OverlayHeader header = SampleHeader();
    header.version = 2;
    if (part == 0) header.owner = FileOwner{1, 1};
    if (part == 1) header.mode = 0644;
    if (part == 2) header.stream_wish = StreamWish{};
    if (part == 3) header.partial_data_file = true;
    std::string slot;
    Status status = EncodeHeaderSlot(header, &slot);
    EXPECT_EQ(status.code(), EINVAL) << "part " << part;
    EXPECT_NE(status.message().find("version 2"), std::string::npos) << status.message();
  }
  OverlayHeader header = SampleHeader();
  header.mode = 010000;  // past the permission, setuid, setgid and sticky bits
  std::string slot;
  EXPECT_EQ(EncodeHeaderSlot(header, &slot).code(), EINVAL);
  header.mode.reset();
  header.stream_wish = StreamWish{0, ""};
  EXPECT_EQ(EncodeHeaderSlot(header, &slot).code(), EINVAL);
}

TEST(OverlayHeader, DecodeRefusesDamagedVersion3Fields) {
  OverlayHeader header;
  header.sequence = 1;
  header.virtual_size = 1 << 20;
  header.standalone = true;
  header.owner = FileOwner{5, 6};
  std::string slot;
  ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
  // The version 3 fields follow the chain length: here, right after it.
  const size_t fields = 24 + 8 + 8 + 4 + 4 + 4;
  OverlayHeader decoded;
  auto refused = [&](const std::string& bad) {
    Status status = DecodeHeaderSlot(bad, &decoded);
    EXPECT_EQ(status.code(), EUCLEAN) << status.message();
    return status.message();
  };

  std::string bad = slot;  // a file flag this corfs does not know
  bad[fields] = static_cast<char>(bad[fields] | 16);
  Reseal(&bad);
  EXPECT_NE(refused(bad).find("unknown file flags"), std::string::npos);

  bad = slot;  // the owner's flag cleared, its fields left
  bad[fields] = static_cast<char>(bad[fields] & ~1);
  Reseal(&bad);
  EXPECT_NE(refused(bad).find("owner"), std::string::npos);

  bad = slot;  // a mode stored without its flag
  bad[fields + 12] = 1;
  Reseal(&bad);
  EXPECT_NE(refused(bad).find("mode"), std::string::npos);

  bad = slot;  // the fields cut short
  uint32_t length = 0;
  std::memcpy(&length, bad.data() + 12, 4);
  length -= 2;
  std::memcpy(bad.data() + 12, &length, 4);
  Reseal(&bad);
  EXPECT_NE(refused(bad).find("do not match their length"), std::string::npos);
}

TEST(OverlayHeader, Version4RecordsVersionTags) {
  OverlayHeader header = SampleHeader();
  ASSERT_EQ(header.version, 4u);
  header.chain[0].spec.path = "https://templates.example/t/top.qcow2";
  header.chain[0].identity.stamp.reset();  // a URI has no file stamp
  header.chain[0].identity.version_tag = "etag:\"5f3a-1c\"";
  std::string slot;
  ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
  OverlayHeader decoded;
  ASSERT_TRUE(DecodeHeaderSlot(slot, &decoded).ok());
  EXPECT_EQ(decoded, header);
  EXPECT_EQ(decoded.chain[0].identity.version_tag, "etag:\"5f3a-1c\"");
  EXPECT_EQ(decoded.chain[1].identity.version_tag, "");

  // Version 3 has no room for a tag: recording one is refused, not dropped.
  header.version = 3;
  Status older = EncodeHeaderSlot(header, &slot);
  EXPECT_EQ(older.code(), EINVAL);
  EXPECT_NE(older.message().find("version tag"), std::string::npos) << older.message();
  // Without tags, version 3 encodes as before and decodes with none.
  header.chain[0].identity.version_tag.clear();
  ASSERT_TRUE(EncodeHeaderSlot(header, &slot).ok());
  ASSERT_TRUE(DecodeHeaderSlot(slot, &decoded).ok());
  EXPECT_EQ(decoded.version, 3u);
  EXPECT_EQ(decoded, header);
}

}  // namespace
}  // namespace corfs::overlay
