package store

// Event types emitted to the outbox. Webhook subscriptions name these.
const (
	EventPurchaseOrderCreated   = "purchase_order.created"
	EventPurchaseOrderApproved  = "purchase_order.approved"
	EventPurchaseOrderReceived  = "purchase_order.received"
	EventPurchaseOrderClosed    = "purchase_order.closed"
	EventPurchaseOrderCancelled = "purchase_order.cancelled"
	EventInvoiceCreated         = "invoice.created"
	EventPaymentRecorded        = "payment.recorded"
	EventVendorCreated          = "vendor.created"
	EventVendorUpdated          = "vendor.updated"
)

// EventTypes lists every event type iacc emits.
func EventTypes() []string {
	return []string{
		EventPurchaseOrderCreated, EventPurchaseOrderApproved, EventPurchaseOrderReceived, EventPurchaseOrderClosed,
		EventPurchaseOrderCancelled, EventInvoiceCreated, EventPaymentRecorded, EventVendorCreated, EventVendorUpdated,
		EventReportReady,
	}
}
