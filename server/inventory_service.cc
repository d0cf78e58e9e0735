#include "server/inventory_service.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "server/convert.h"

namespace fleetplan::server {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

ServerUnaryReactor* InventoryServiceImpl::CreateGpuType(CallbackServerContext* c,
                                                        const v1::CreateGpuTypeRequest* req,
                                                        v1::GpuType* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    if (!req->has_gpu_type()) return absl::InvalidArgumentError("gpu_type is required");
    return Idempotent(deps_, "CreateGpuType", req->request_id(), *req, resp, [&]() -> absl::Status {
      const placement::GpuType type = FromProto(req->gpu_type());
      RETURN_IF_ERROR(deps_.store->CreateGpuType(type, {.validate_only = req->validate_only()}));
      if (!req->validate_only()) InvalidateEstimates(deps_);
      ToProto(type, resp);
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* InventoryServiceImpl::GetGpuType(CallbackServerContext* c,
                                                     const v1::GetGpuTypeRequest* req,
                                                     v1::GpuType* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(placement::GpuType type, deps_.store->GetGpuType(req->name()));
    ToProto(type, resp);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* InventoryServiceImpl::ListGpuTypes(CallbackServerContext* c,
                                                       const v1::ListGpuTypesRequest* /*req*/,
                                                       v1::ListGpuTypesResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto types, deps_.store->ListGpuTypes());
    for (const auto& t : types) ToProto(t, resp->add_gpu_types());
    return absl::OkStatus();
  });
}

ServerUnaryReactor* InventoryServiceImpl::DeleteGpuType(CallbackServerContext* c,
                                                        const v1::DeleteGpuTypeRequest* req,
                                                        google::protobuf::Empty* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "DeleteGpuType", req->request_id(), *req, resp, [&]() -> absl::Status {
      RETURN_IF_ERROR(deps_.store->DeleteGpuType(req->name()));
      InvalidateEstimates(deps_);
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* InventoryServiceImpl::CreateNode(CallbackServerContext* c,
                                                     const v1::CreateNodeRequest* req,
                                                     v1::Node* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    if (!req->has_node()) return absl::InvalidArgumentError("node is required");
    return Idempotent(deps_, "CreateNode", req->request_id(), *req, resp, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(placement::Node node, FromProto(req->node()));
      ASSIGN_OR_RETURN(placement::Node created,
                       deps_.store->CreateNode(node, {.validate_only = req->validate_only()}));
      ToProto(created, resp);
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* InventoryServiceImpl::ImportNodes(CallbackServerContext* c,
                                                      const v1::ImportNodesRequest* req,
                                                      v1::ImportNodesResponse* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "ImportNodes", req->request_id(), *req, resp, [&]() -> absl::Status {
      std::vector<placement::Node> nodes;
      nodes.reserve(static_cast<size_t>(req->nodes_size()));
      for (int i = 0; i < req->nodes_size(); ++i) {
        absl::StatusOr<placement::Node> n = FromProto(req->nodes(i));
        if (!n.ok()) {
          return absl::Status(n.status().code(),
                              absl::StrCat("nodes[", i, "]: ", n.status().message()));
        }
        nodes.push_back(*std::move(n));
      }
      ASSIGN_OR_RETURN(std::vector<storage::NodeImportResult> results,
                       deps_.store->ImportNodes(nodes, {.validate_only = req->validate_only()}));
      for (const storage::NodeImportResult& r : results) {
        v1::NodeImportResult* out = resp->add_results();
        out->set_name(r.name);
        switch (r.outcome) {
          case storage::NodeImportResult::Outcome::kCreated:
            out->set_outcome(v1::NodeImportResult::CREATED);
            resp->set_created(resp->created() + 1);
            break;
          case storage::NodeImportResult::Outcome::kUpdated:
            out->set_outcome(v1::NodeImportResult::UPDATED);
            resp->set_updated(resp->updated() + 1);
            break;
          case storage::NodeImportResult::Outcome::kUnchanged:
            out->set_outcome(v1::NodeImportResult::UNCHANGED);
            resp->set_unchanged(resp->unchanged() + 1);
            break;
        }
      }
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* InventoryServiceImpl::GetNode(CallbackServerContext* c,
                                                  const v1::GetNodeRequest* req, v1::Node* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(placement::Node node, deps_.store->GetNode(req->name()));
    ToProto(node, resp);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* InventoryServiceImpl::ListNodes(CallbackServerContext* c,
                                                    const v1::ListNodesRequest* req,
                                                    v1::ListNodesResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    storage::NodeFilter filter{
        .pool = req->pool(), .zone = req->zone(), .gpu_type = req->gpu_type()};
    for (const auto& [k, v] : req->labels()) filter.labels[k] = v;
    ASSIGN_OR_RETURN(storage::NodePage page,
                     deps_.store->ListNodes(filter, req->page_size(), req->page_token()));
    for (const auto& n : page.nodes) ToProto(n, resp->add_nodes());
    resp->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* InventoryServiceImpl::UpdateNode(CallbackServerContext* c,
                                                     const v1::UpdateNodeRequest* req,
                                                     v1::Node* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    if (!req->has_node()) return absl::InvalidArgumentError("node is required");
    return Idempotent(deps_, "UpdateNode", req->request_id(), *req, resp, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(int64_t version, ParseNodeEtag(req->node().etag()));
      ASSIGN_OR_RETURN(placement::Node node, FromProto(req->node()));
      ASSIGN_OR_RETURN(placement::Node updated, deps_.store->UpdateNode(node, version));
      ToProto(updated, resp);
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* InventoryServiceImpl::DeleteNode(CallbackServerContext* c,
                                                     const v1::DeleteNodeRequest* req,
                                                     google::protobuf::Empty* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "DeleteNode", req->request_id(), *req, resp,
                      [&] { return deps_.store->DeleteNode(req->name(), req->force()); });
  });
}

ServerUnaryReactor* InventoryServiceImpl::CordonNode(CallbackServerContext* c,
                                                     const v1::CordonNodeRequest* req,
                                                     v1::Node* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "CordonNode", req->request_id(), *req, resp, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(
          placement::Node node,
          deps_.store->SetNodeState(req->name(), placement::NodeState::kCordoned, false));
      ToProto(node, resp);
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* InventoryServiceImpl::DrainNode(CallbackServerContext* c,
                                                    const v1::DrainNodeRequest* req,
                                                    v1::Node* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "DrainNode", req->request_id(), *req, resp, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(
          placement::Node node,
          deps_.store->SetNodeState(req->name(), placement::NodeState::kDraining, req->force()));
      ToProto(node, resp);
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* InventoryServiceImpl::UncordonNode(CallbackServerContext* c,
                                                       const v1::UncordonNodeRequest* req,
                                                       v1::Node* resp) {
  return RunUnary(c, deps_, Role::kWriter, [&]() -> absl::Status {
    return Idempotent(deps_, "UncordonNode", req->request_id(), *req, resp, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(
          placement::Node node,
          deps_.store->SetNodeState(req->name(), placement::NodeState::kActive, false));
      ToProto(node, resp);
      return absl::OkStatus();
    });
  });
}

ServerUnaryReactor* InventoryServiceImpl::ListPools(CallbackServerContext* c,
                                                    const v1::ListPoolsRequest* /*req*/,
                                                    v1::ListPoolsResponse* resp) {
  return RunUnary(c, deps_, Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<const storage::FleetView> view, deps_.fleet->Current());
    const placement::FleetSnapshot& snap = view->snapshot();
    std::map<std::string, v1::Pool> pools;
    for (const placement::Node& n : snap.nodes) {
      v1::Pool& p = pools[n.pool];
      p.set_name(n.pool);
      p.set_nodes(p.nodes() + 1);
      p.set_gpus(p.gpus() + static_cast<int64_t>(n.gpus.size()));
      for (const placement::Gpu& g : n.gpus) {
        const placement::GpuType* t = snap.FindGpuType(g.gpu_type);
        if (t != nullptr) p.set_memory_bytes(p.memory_bytes() + t->memory_bytes);
      }
    }
    for (auto& [name, p] : pools) *resp->add_pools() = p;
    return absl::OkStatus();
  });
}

}  // namespace fleetplan::server
