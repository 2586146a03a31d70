// hubcache: an on-disk cache of Hugging Face Hub files, byte-compatible with
// Python huggingface_hub's cache, usable fully offline.
//
//   #include <hubcache/hubcache.hpp>
//   auto onnx = hubcache::fetch("org/model", "onnx/model.onnx");
//
// Umbrella header: includes the whole public API.
#pragma once

#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/options.hpp"
#include "hubcache/settings.hpp"
#include "hubcache/admin.hpp"
