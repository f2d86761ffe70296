"""License products (License类商品): legacy V1, 授权码 2.0 and online activation, on /license."""
