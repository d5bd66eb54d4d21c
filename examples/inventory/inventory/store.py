from dataclasses import dataclass, field


@dataclass
class Item:
    sku: str
    name: str
    price_cents: int
    quantity: int = 0


@dataclass
class Store:
    items: dict[str, Item] = field(default_factory=dict)

    def add(self, item: Item) -> None:
        if item.sku in self.items:
            raise ValueError(f"duplicate sku {item.sku}")
        self.items[item.sku] = item

    def restock(self, sku: str, count: int) -> Item:
        item = self.items[sku]
        item.quantity += count
        return item

    def total_value_cents(self) -> int:
        total = 0
        for item in self.items.values():
            total = total + item.price_cents * item.quantity
        return total
