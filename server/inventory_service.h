#ifndef FLEETPLAN_SERVER_INVENTORY_SERVICE_H_
#define FLEETPLAN_SERVER_INVENTORY_SERVICE_H_

// fleetplan.v1.InventoryService: GPU types, nodes and pools. Thread-safe (the store is).

#include "fleetplan/v1/inventory.grpc.pb.h"
#include "server/handler.h"

namespace fleetplan::server {

class InventoryServiceImpl final : public v1::InventoryService::CallbackService {
 public:
  explicit InventoryServiceImpl(ServiceDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* CreateGpuType(grpc::CallbackServerContext* c,
                                          const v1::CreateGpuTypeRequest* req,
                                          v1::GpuType* resp) override;
  grpc::ServerUnaryReactor* GetGpuType(grpc::CallbackServerContext* c,
                                       const v1::GetGpuTypeRequest* req,
                                       v1::GpuType* resp) override;
  grpc::ServerUnaryReactor* ListGpuTypes(grpc::CallbackServerContext* c,
                                         const v1::ListGpuTypesRequest* req,
                                         v1::ListGpuTypesResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteGpuType(grpc::CallbackServerContext* c,
                                          const v1::DeleteGpuTypeRequest* req,
                                          google::protobuf::Empty* resp) override;
  grpc::ServerUnaryReactor* CreateNode(grpc::CallbackServerContext* c,
                                       const v1::CreateNodeRequest* req, v1::Node* resp) override;
  grpc::ServerUnaryReactor* ImportNodes(grpc::CallbackServerContext* c,
                                        const v1::ImportNodesRequest* req,
                                        v1::ImportNodesResponse* resp) override;
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* c, const v1::GetNodeRequest* req,
                                    v1::Node* resp) override;
  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* c,
                                      const v1::ListNodesRequest* req,
                                      v1::ListNodesResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateNode(grpc::CallbackServerContext* c,
                                       const v1::UpdateNodeRequest* req, v1::Node* resp) override;
  grpc::ServerUnaryReactor* DeleteNode(grpc::CallbackServerContext* c,
                                       const v1::DeleteNodeRequest* req,
                                       google::protobuf::Empty* resp) override;
  grpc::ServerUnaryReactor* CordonNode(grpc::CallbackServerContext* c,
                                       const v1::CordonNodeRequest* req, v1::Node* resp) override;
  grpc::ServerUnaryReactor* DrainNode(grpc::CallbackServerContext* c,
                                      const v1::DrainNodeRequest* req, v1::Node* resp) override;
  grpc::ServerUnaryReactor* UncordonNode(grpc::CallbackServerContext* c,
                                         const v1::UncordonNodeRequest* req,
                                         v1::Node* resp) override;
  grpc::ServerUnaryReactor* ListPools(grpc::CallbackServerContext* c,
                                      const v1::ListPoolsRequest* req,
                                      v1::ListPoolsResponse* resp) override;

 private:
  ServiceDeps deps_;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_INVENTORY_SERVICE_H_
