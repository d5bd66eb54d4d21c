export interface ItemView {
  sku: string;
  name: string;
  priceCents: number;
}

export function formatPrice(item: ItemView): string {
  const dollars = Math.floor(item.priceCents / 100);
  const cents = String(item.priceCents % 100).padStart(2, "0");
  return `${item.name}: $${dollars}.${cents}`;
}
