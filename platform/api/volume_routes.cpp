#include "api/volume_routes.h"

#include <httplib.h>

#include "instances/instance_store.h"
#include "store/sqlite.h"

namespace kiln::api {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

volumes::VolumeStore& store_of(State& state) {
    if (!state.volumes) throw ApiError{503, "this kilnd keeps no volumes"};
    return *state.volumes;
}

// An instance that has a tender or a snapshot of its guest (standby): its volumes are in use.
bool live(const std::string& state) { return state != instances::kStopped; }

std::string instance_name(State& state, const std::string& uuid) {
    const auto instance = state.instances.find(uuid);
    return instance ? instance->name : uuid;
}

json volume_json(State& state, const volumes::Volume& v) {
    json attached = json::array(), mounted = json::array();
    for (const auto& a : v.attachments) {
        const auto instance = state.instances.find(a.instance);
        const std::string instance_state = instance ? instance->state : "deleted";
        json entry = {{"uuid", a.instance},
                      {"name", instance ? instance->name : a.instance},
                      {"at", a.at},
                      {"readonly", a.readonly},
                      {"state", instance_state}};
        if (instance && live(instance_state)) mounted.push_back(entry);
        attached.push_back(std::move(entry));
    }
    // Unikraft Cloud's words: available (attached to nothing), idle (attached, not in use), mounted.
    const std::string state_word = v.attachments.empty() ? "available" : mounted.empty() ? "idle" : "mounted";
    return {{"uuid", v.uuid},
            {"name", v.name},
            {"size_mb", v.size_mb},
            {"size_bytes", v.size_mb << 20},
            {"state", state_word},
            {"persistent", true},
            {"created_ns", v.created_ns},
            {"file", v.file},
            {"attached_to", attached},
            {"mounted_by", mounted}};
}

volumes::Volume find_volume(State& state, const std::string& id) {
    auto v = store_of(state).find(id);
    if (!v) throw ApiError{404, "no volume '" + id + "'"};
    return *v;
}

instances::Instance find_instance(State& state, const std::string& id) {
    auto instance = state.instances.find(id);
    if (!instance) throw ApiError{404, "no instance '" + id + "'"};
    return *instance;
}

// Refuses `attachment` if its volume or its instance's mount path is taken (see the header).
void check_attachment(State& state, const volumes::Volume& v, const volumes::Attachment& attachment,
                      const std::vector<volumes::Attachment>& instance_has) {
    for (const auto& a : instance_has) {
        if (a.volume == v.uuid)
            throw ApiError{409, "volume '" + v.name + "' is attached to instance '" +
                                    instance_name(state, attachment.instance) + "' already"};
        if (a.at == attachment.at)
            throw ApiError{409, "instance '" + instance_name(state, attachment.instance) + "' has a volume at " +
                                    attachment.at + " already"};
        if (auto conflict = volumes::mount_conflict(a.at, attachment.at); !conflict.empty())
            throw ApiError{409, "instance '" + instance_name(state, attachment.instance) + "': " + conflict};
    }
    if (instance_has.size() >= kMaxVolumesPerInstance)
        throw ApiError{409, "an instance has at most " + std::to_string(kMaxVolumesPerInstance) + " volumes"};
    for (const auto& other : v.attachments) {
        if (other.instance == attachment.instance) continue;
        if (!attachment.readonly || !other.readonly)
            throw ApiError{409, "volume '" + v.name + "' is attached to instance '" +
                                    instance_name(state, other.instance) + "'" +
                                    (other.readonly ? " read-only" : " read-write") +
                                    ": ext4 is not a cluster file system; only read-only attachments may be shared"};
    }
}

}  // namespace

std::vector<volumes::Attachment> plan_attachments(State& state, const std::string& instance_uuid,
                                                  const std::vector<VolumeAttachRequest>& requests) {
    if (requests.empty()) return {};
    auto& store = store_of(state);
    std::vector<volumes::Attachment> planned = store.attachments_of_instance(instance_uuid);
    const size_t existing = planned.size();
    for (const auto& r : requests) {
        const auto v = find_volume(state, r.id);
        const volumes::Attachment attachment{v.uuid, instance_uuid, r.at, r.readonly};
        check_attachment(state, v, attachment, planned);
        planned.push_back(attachment);
    }
    return {planned.begin() + static_cast<std::ptrdiff_t>(existing), planned.end()};
}

json instance_volumes(State& state, const std::string& instance_uuid) {
    json out = json::array();
    if (!state.volumes) return out;
    for (const auto& a : state.volumes->attachments_of_instance(instance_uuid)) {
        const auto v = state.volumes->find(a.volume);
        out.push_back({{"uuid", a.volume}, {"name", v ? v->name : a.volume}, {"at", a.at}, {"readonly", a.readonly}});
    }
    return out;
}

void Server::volume_routes() {
    // A new volume's name must be free. Volumes are made under the state lock: mke2fs of 256 MiB
    // takes a fraction of a second.
    auto free_name = [this](const std::string& name) {
        if (store_of(state_).find(name)) throw ApiError{409, "a volume named '" + name + "' exists"};
    };

    http_->Post("/v1/volumes", handler([this, free_name](const auto& request, auto& response, auto started) {
                    const VolumeCreateRequest r = parse_volume_create(request.body);
                    const std::string name = r.name.value_or("volume-" + instances::new_uuid().substr(0, 6));
                    free_name(name);
                    const auto v = store_of(state_).create(name, r.size_mb);
                    reply(response, started, 201, "created", volume_json(state_, v));
                }));
    http_->Get("/v1/volumes", handler([this](const auto&, auto& response, auto started) {
                   json all = json::array();
                   for (const auto& v : store_of(state_).list()) all.push_back(volume_json(state_, v));
                   reply(response, started, 200, "", {{"volumes", all}});
               }));
    http_->Get(R"(/v1/volumes/([^/]+))", handler([this](const auto& request, auto& response, auto started) {
                   reply(response, started, 200, "", volume_json(state_, find_volume(state_, request.matches[1])));
               }));
    http_->Delete(
        R"(/v1/volumes/([^/]+))", handler([this](const auto& request, auto& response, auto started) {
            const auto v = find_volume(state_, request.matches[1]);
            if (!v.attachments.empty())
                throw ApiError{409, "volume '" + v.name + "' is attached to instance '" +
                                        instance_name(state_, v.attachments.front().instance) +
                                        "': detach it (or delete the instance) first"};
            store_of(state_).remove(v);
            reply(response, started, 200, "deleted", {{"uuid", v.uuid}, {"name", v.name}, {"state", "deleted"}});
        }));
    // Attach and detach act on a stopped instance: its next start has the change.
    http_->Put(R"(/v1/volumes/([^/]+)/attach)", handler([this](const auto& request, auto& response, auto started) {
                   const VolumeAttachRequest r = parse_volume_attach(request.body);
                   const auto v = find_volume(state_, request.matches[1]);
                   const auto instance = find_instance(state_, r.id);
                   if (instance.state != instances::kStopped)
                       throw ApiError{409, "instance '" + instance.name + "' is " + instance.state +
                                               ": volumes are attached to a stopped instance"};
                   const volumes::Attachment attachment{v.uuid, instance.uuid, r.at, r.readonly};
                   check_attachment(state_, v, attachment, store_of(state_).attachments_of_instance(instance.uuid));
                   store_of(state_).attach(attachment);
                   reply(response, started, 200, "attached", volume_json(state_, find_volume(state_, v.uuid)));
               }));
    http_->Put(
        R"(/v1/volumes/([^/]+)/detach)", handler([this](const auto& request, auto& response, auto started) {
            const std::string from = parse_volume_detach(request.body);
            const auto v = find_volume(state_, request.matches[1]);
            const auto instance = find_instance(state_, from);
            bool attached = false;
            for (const auto& a : v.attachments) attached = attached || a.instance == instance.uuid;
            if (!attached)
                throw ApiError{409, "volume '" + v.name + "' is not attached to instance '" + instance.name + "'"};
            if (instance.state != instances::kStopped)
                throw ApiError{409, "instance '" + instance.name + "' is " + instance.state +
                                        ": volumes are detached from a stopped instance"};
            store_of(state_).detach(v.uuid, instance.uuid);
            reply(response, started, 200, "detached", volume_json(state_, find_volume(state_, v.uuid)));
        }));
    // A copy of the file: only while no running instance may be writing it.
    http_->Post(R"(/v1/volumes/([^/]+)/clone)",
                handler([this, free_name](const auto& request, auto& response, auto started) {
                    const std::string name = parse_volume_clone(request.body);
                    const auto v = find_volume(state_, request.matches[1]);
                    for (const auto& a : v.attachments) {
                        const auto instance = state_.instances.find(a.instance);
                        if (!a.readonly && instance && live(instance->state))
                            throw ApiError{409, "volume '" + v.name + "' is in use read-write by instance '" +
                                                    instance->name + "' (" + instance->state + "): stop it first"};
                    }
                    free_name(name);
                    reply(response, started, 201, "cloned", volume_json(state_, store_of(state_).clone(v, name)));
                }));
}

}  // namespace kiln::api
