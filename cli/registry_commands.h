// kiln login, kiln tag, kiln push, kiln pull: images in OCI registries (docs/registries.md), with
// this machine's image store. kiln run REF pulls through the same code when REF is not here.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "images/image_store.h"

namespace kiln::cli {

// Adds the registry commands to `app`.
void add_registry_commands(CLI::App& app);

// Adds --registry-ca and --insecure-registry to a command that may reach a registry.
void add_registry_flags(CLI::App& command);

// Lets `store` pull a registry's image it lacks (a Dockerfile's FROM), as kiln pull does.
void use_registries(images::ImageStore& store);

// `reference` as kilnd can run it: a registry's image that is not in the local store is pulled
// into it first (and, with a remote kilnd in use, sent to it). Returns the reference.
std::string ensure_image(const std::string& reference);

}  // namespace kiln::cli
