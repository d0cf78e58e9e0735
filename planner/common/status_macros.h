#ifndef FLEETPLAN_PLANNER_COMMON_STATUS_MACROS_H_
#define FLEETPLAN_PLANNER_COMMON_STATUS_MACROS_H_

// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr<T>.
//
// Abseil 20220623 (Debian 12) ships no status macros, so we keep this small pair. They follow the
// semantics of the macros Abseil later published (Tip #181): the expression is evaluated once, the
// error is returned unchanged, and ASSIGN_OR_RETURN moves the value out.
//
//   RETURN_IF_ERROR(store.Open());
//   ASSIGN_OR_RETURN(ModelSpec spec, ParseModelConfig(text));
//   ASSIGN_OR_RETURN(auto plan, planner.Plan(snapshot, request));

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FLEETPLAN_STATUS_CONCAT_INNER_(a, b) a##b
#define FLEETPLAN_STATUS_CONCAT_(a, b) FLEETPLAN_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                                 \
  do {                                                                        \
    if (::absl::Status fleetplan_status_ = (expr); !fleetplan_status_.ok()) { \
      return fleetplan_status_;                                               \
    }                                                                         \
  } while (false)

#define FLEETPLAN_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                     \
  if (!statusor.ok()) {                                       \
    return std::move(statusor).status();                      \
  }                                                           \
  lhs = std::move(statusor).value()

#define ASSIGN_OR_RETURN(lhs, expr)                                                              \
  FLEETPLAN_ASSIGN_OR_RETURN_IMPL_(FLEETPLAN_STATUS_CONCAT_(fleetplan_statusor_, __LINE__), lhs, \
                                   expr)

#endif  // FLEETPLAN_PLANNER_COMMON_STATUS_MACROS_H_
