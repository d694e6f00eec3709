package lifecyclepb

import (
	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
)

// HookInvocation is call as the invocation id of a hook worker serving callback name.
func HookInvocation(id, name string, call *lifecycle.HookCall) *v1.HookInvocation {
	return &v1.HookInvocation{InvocationId: id, Callback: name, Request: &v1.WebhookRequest{
		HookId: call.HookID, HookName: call.HookName, Blocking: call.Blocking, Event: Event(&call.Event),
		IdempotencyKey: call.IdempotencyKey, Attempt: int32(call.Attempt), Deadline: timestamp(call.Deadline),
	}}
}
