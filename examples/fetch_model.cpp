// fetch_model: the seed API end to end. Fetches one file of a Hub repo into the
// cache (downloading on a miss, verified), then prints its local path and size.
//
//   fetch_model [REPO] [FILE] [REVISION]
//   fetch_model Xenova/all-MiniLM-L6-v2 onnx/model.onnx
//
// The cache, endpoint, token and offline mode come from the environment, exactly
// as for huggingface_hub (HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE...).
// Exit code: 0, or the hubcache error code (docs/cli.md#exit-codes).
#include <hubcache/hubcache.hpp>

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  const std::string repo = argc > 1 ? argv[1] : "Xenova/all-MiniLM-L6-v2";
  const std::string file = argc > 2 ? argv[2] : "onnx/model.onnx";

  hubcache::Options options;
  if (argc > 3) options.revision = argv[3];
  // Progress on stderr, once per 10 %, so a long download shows it is alive.
  int last_decile = -1;
  options.progress = [&](const hubcache::ProgressEvent& e) {
    if (e.total == 0) return;
    const int decile = static_cast<int>(e.downloaded * 10 / e.total);
    if (decile != last_decile) {
      last_decile = decile;
      std::cerr << e.file << ": " << decile * 10 << "%\n";
    }
  };

  try {
    std::cerr << (hubcache::is_cached(repo, file, options) ? "cached: " : "not cached yet: ") << repo << "/" << file
              << "\n";
    const std::filesystem::path local = hubcache::fetch(repo, file, options);
    // A real application would now hand `local` to its engine, e.g. Ort::Session(env, local.c_str(), opts).
    std::cout << local.string() << "\n" << std::filesystem::file_size(local) << " bytes\n";
    return 0;
  } catch (const hubcache::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(e.code());
  }
}
