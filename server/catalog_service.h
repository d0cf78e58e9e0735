#ifndef FLEETPLAN_SERVER_CATALOG_SERVICE_H_
#define FLEETPLAN_SERVER_CATALOG_SERVICE_H_

// fleetplan.v1.CatalogService: models imported from config.json, summarised by the estimator.

#include "fleetplan/v1/catalog.grpc.pb.h"
#include "server/handler.h"

namespace fleetplan::server {

class CatalogServiceImpl final : public v1::CatalogService::CallbackService {
 public:
  explicit CatalogServiceImpl(ServiceDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* ImportModel(grpc::CallbackServerContext* c,
                                        const v1::ImportModelRequest* req,
                                        v1::Model* resp) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* c, const v1::GetModelRequest* req,
                                     v1::Model* resp) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* c,
                                       const v1::ListModelsRequest* req,
                                       v1::ListModelsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* c,
                                        const v1::DeleteModelRequest* req,
                                        google::protobuf::Empty* resp) override;

 private:
  ServiceDeps deps_;
};

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_CATALOG_SERVICE_H_
