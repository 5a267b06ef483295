// Stock levels as the dashboard reads them: the fields asked for and their shape.
export const levelFields = `warehouse { id } quantity reserved available lowStockThreshold`;

export interface Warehouse {
  id: string;
  code: string;
  name: string;
}

export interface Level {
  warehouse: { id: string };
  quantity: number;
  reserved: number;
  available: number;
  lowStockThreshold: number;
}

export interface StockProduct {
  id: string;
  sku: string;
  name: string;
  inventory: Level[];
}
