// The volumes' side of kilnd's API (/v1/volumes, and an instance's `volumes` at its create):
// what may be attached where. ext4 is not a cluster file system: a volume attached read-write to
// one instance is attached to no other; read-only to several only while none has it read-write.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/request.h"
#include "api/server.h"
#include "volumes/volume_store.h"

namespace kiln::api {

// The attachments `requests` make for the instance `instance_uuid` (stopped or new), each checked
// against the volumes' others; throws ApiError (404 no such volume, 409 in use) before anything
// is recorded.
std::vector<volumes::Attachment> plan_attachments(State& state, const std::string& instance_uuid,
                                                  const std::vector<VolumeAttachRequest>& requests);

// An instance's volumes as its JSON shows them: [{uuid, name, at, readonly}], device order.
nlohmann::json instance_volumes(State& state, const std::string& instance_uuid);

}  // namespace kiln::api
