// kiln build, kiln images, kiln image inspect, kiln rmi: the image store on this machine, or,
// with --host, a remote kilnd's (an image is built here and pushed to it).
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "images/image_store.h"

namespace kiln::cli {

// Adds the image commands to `app`.
void add_image_commands(CLI::App& app);

// Builds the image a Kraftfile describes in the local store and, when a remote kilnd is in use,
// pushes it there. Throws naming what is wrong.
images::Image build_image(const std::string& kraftfile_path, const std::string& tag = {},
                          const std::map<std::string, std::string>& build_args = {});
// Sends an image of the local store to the remote kilnd in use. Throws naming what failed.
void send_image(const images::ImageStore& store, const images::Image& image);
// A project directory's Kraftfile, or, where it has only a Dockerfile, one made for it (the image
// named after the directory, the Dockerfile its rootfs). Throws naming what is missing.
images::Kraftfile project_kraftfile(const std::string& dir);
// The same, for a Kraftfile already read.
images::Image build_image(const images::Kraftfile& kraftfile, const std::string& tag = {},
                          const std::map<std::string, std::string>& build_args = {});

}  // namespace kiln::cli
