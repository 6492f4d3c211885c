// Writing an image somewhere else: another store name, an OCI layout, a
// docker-archive tarball, or the flattened root file system as one tar.
// Files are written beside the destination and renamed into place.
#pragma once

#include <string>

#include "image/image.h"
#include "ref/reference.h"
#include "store/store.h"

namespace kiln {

// Returns the destination as written ("oci:out:1.0.0").
std::string ExportImage(const Image& image, const Reference& dest,
                        const Store& store, bool replace = false);

}  // namespace kiln
