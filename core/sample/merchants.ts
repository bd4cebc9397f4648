/** Fictional merchants for synthetic receipts: several brands, each with branches (address, phone). */
export interface Branch {
  street: string;
  city: string;
  state: string;
  zip: string;
  phone: string;
}

export interface Merchant {
  name: string;
  category: string;
  url: string;
  branches: Branch[];
  items: [string, number][];
  footer: string;
}

export const MERCHANTS: Merchant[] = [
  {
    name: 'Sprouts Farmers Market',
    category: 'grocery_store',
    url: 'www.sprouts.com',
    branches: [
      {
        street: '1234 Mission Gorge Road',
        city: 'San Diego',
        state: 'CA',
        zip: '92120',
        phone: '(619) 555-0134',
      },
      {
        street: '88 Thousand Oaks Boulevard',
        city: 'Thousand Oaks',
        state: 'CA',
        zip: '91362',
        phone: '(805) 555-0178',
      },
    ],
    items: [
      ['ORGANIC BANANAS', 1.29],
      ['AVOCADO HASS', 1.5],
      ['ALMOND MILK', 3.99],
      ['GREEK YOGURT', 5.49],
      ['SOURDOUGH LOAF', 4.99],
      ['BABY SPINACH', 3.49],
      ['RED GRAPES', 4.12],
    ],
    footer: 'THANK YOU FOR SHOPPING SPROUTS',
  },
  {
    name: 'Blue Bottle Coffee',
    category: 'cafe',
    url: 'https://bluebottlecoffee.com/',
    branches: [
      { street: '300 Webster Street', city: 'Oakland', state: 'CA', zip: '94607', phone: '(510) 555-0199' },
      {
        street: '1 Ferry Building',
        city: 'San Francisco',
        state: 'CA',
        zip: '94111',
        phone: '(415) 555-0142',
      },
    ],
    items: [
      ['LATTE 12OZ', 5.75],
      ['CAPPUCCINO', 5.25],
      ['DRIP COFFEE', 3.5],
      ['LIEGE WAFFLE', 4.5],
      ['COLD BREW', 5.0],
      ['OAT MILK ADD', 0.75],
    ],
    footer: 'ENJOY YOUR COFFEE',
  },
  {
    name: 'Home Depot',
    category: 'hardware_store',
    url: 'homedepot.com',
    branches: [
      {
        street: '5920 Fairmount Avenue',
        city: 'San Diego',
        state: 'CA',
        zip: '92120',
        phone: '(619) 555-0111',
      },
      {
        street: '2455 Cheshire Bridge Road',
        city: 'Atlanta',
        state: 'GA',
        zip: '30324',
        phone: '(404) 555-0163',
      },
      { street: '700 Sixth Avenue', city: 'New York', state: 'NY', zip: '10010', phone: '(212) 555-0190' },
    ],
    items: [
      ['2X4 STUD 8FT', 3.98],
      ['DRYWALL SCREWS', 8.97],
      ['PAINT ROLLER', 6.47],
      ['BLUE TAPE 2IN', 7.28],
      ['LED BULB 4PK', 9.97],
      ['WOOD GLUE', 4.27],
      ['SANDPAPER 120', 5.38],
    ],
    footer: 'HOW DOERS GET MORE DONE',
  },
  {
    name: "Trader Joe's",
    category: 'grocery_store',
    url: 'traderjoes.com',
    branches: [
      { street: '1072 Garnet Avenue', city: 'San Diego', state: 'CA', zip: '92109', phone: '(858) 555-0147' },
      {
        street: '142 East 14th Street',
        city: 'New York',
        state: 'NY',
        zip: '10003',
        phone: '(212) 555-0129',
      },
    ],
    items: [
      ['MANDARIN CHICKEN', 4.99],
      ['EVERYTHING BAGEL SEASONING', 2.49],
      ['DARK CHOC PB CUPS', 4.49],
      ['CAULIFLOWER GNOCCHI', 2.99],
      ['FLOWERS BOUQUET', 5.99],
      ['SPARKLING WATER', 0.99],
    ],
    footer: 'THANKS FOR SHOPPING AT TRADER JOES',
  },
  {
    name: 'In-N-Out Burger',
    category: 'restaurant',
    url: 'in-n-out.com',
    branches: [
      {
        street: '3102 Sports Arena Boulevard',
        city: 'San Diego',
        state: 'CA',
        zip: '92110',
        phone: '(800) 555-0186',
      },
      {
        street: '9149 South Sepulveda Boulevard',
        city: 'Los Angeles',
        state: 'CA',
        zip: '90045',
        phone: '(310) 555-0157',
      },
    ],
    items: [
      ['DOUBLE-DOUBLE', 5.6],
      ['CHEESEBURGER', 3.5],
      ['FRENCH FRIES', 2.3],
      ['CHOCOLATE SHAKE', 3.05],
      ['MEDIUM DRINK', 2.1],
    ],
    footer: 'THANK YOU',
  },
  {
    name: 'Walgreens',
    category: 'pharmacy',
    url: 'www.walgreens.com/store',
    branches: [
      {
        street: '4545 La Jolla Village Drive',
        city: 'San Diego',
        state: 'CA',
        zip: '92122',
        phone: '(858) 555-0102',
      },
      {
        street: '151 North State Street',
        city: 'Chicago',
        state: 'IL',
        zip: '60601',
        phone: '(312) 555-0175',
      },
    ],
    items: [
      ['IBUPROFEN 200MG', 8.99],
      ['TOOTHPASTE', 4.29],
      ['VITAMIN D3', 11.49],
      ['HAND SANITIZER', 2.99],
      ['BANDAGES 30CT', 5.79],
      ['GREETING CARD', 3.99],
    ],
    footer: 'BE WELL',
  },
];
