"""Order notification (订单通知): the 通用接口 the marketplace calls after a payment."""
