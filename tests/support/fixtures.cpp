#include "support/fixtures.hpp"

namespace hubcache::test {

void build_seed_cache(const fs::path& root) {
  CacheBuilder b(root, kSeedRepo);
  const std::pair<const char*, const char*> files[] = {
      {"corner_model.onnx", "ec107f0c971df4745fc5b47256d06e6f45355e0f24f5245e92cd4e7eaba4ca53"},
      {"empty_v5_24_08_23.onnx", "7a2df50881906e67b5f5f3985a0ac20f288de4064163362fffa96ec01ecbc796"},
      {"info.txt", "9f8f9aa5623e159f4f4be9a24453132112cc4a05"},
      {"post_it_model.onnx", "05ceaff0dd7a51ee0e94c932bbb2d16505dc9e744bff93c7d4da1b5498056032"},
      {"README.md", "a118d0ca8c0e58e57c3a81d3b2e8e6a605080dc7"},
      {"writing_type_v1.onnx", "f43fa4d3390a4efe97dd54529d96e2eaea3b841cb01abf1b6672a35eb6ffeffe"},
  };
  for (const auto& [file, etag] : files) b.add_file_named(kSeedCommit, file, etag, std::string("content of ") + file);
  // The seed lists a seventh blob that no snapshot uses (an older revision's file).
  write_file(b.repo_dir() / "blobs" / "a6344aac8c09253b3b630fb776ae94478aa0275b", "orphan");
  b.set_ref("main", kSeedCommit);
}

}  // namespace hubcache::test
