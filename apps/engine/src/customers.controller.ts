import { Controller, Get, NotFoundException, Param } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CustomerQueries, type CustomerView, type HistoryEntry } from '@clientele/application';
import { problem } from './problem-details';

@ApiTags('customers')
@Controller('customers')
export class CustomersController {
  constructor(private readonly queries: CustomerQueries) {}

  @Get(':id')
  @ApiOperation({ summary: 'Current lifecycle state, with each stage change and the event that caused it' })
  @ApiParam({ name: 'id', description: 'customer id' })
  @ApiResponse({ status: 404, description: 'no event was ever stored for this customer' })
  async customer(@Param('id') id: string): Promise<CustomerView> {
    const view = await this.queries.customer(id);
    if (view === undefined) throw notFound(id);
    return view;
  }

  @Get(':id/events')
  @ApiOperation({ summary: 'Full history: positions, revisions, business and record time, causation and correlation' })
  @ApiParam({ name: 'id', description: 'customer id' })
  @ApiResponse({ status: 404, description: 'no event was ever stored for this customer' })
  async events(@Param('id') id: string): Promise<{ customerId: string; events: HistoryEntry[] }> {
    const events = await this.queries.history(id);
    if (events === undefined) throw notFound(id);
    return { customerId: id, events };
  }
}

function notFound(id: string): NotFoundException {
  return new NotFoundException(problem(404, 'unknown_customer', 'Unknown customer', `no customer with id ${JSON.stringify(id)}`));
}
